// The GRPO stage (R1-Zero style RL with rule rewards). One step: draw P prompts, sample G completions each
// with the current policy, score them, compute group advantages (variant), recompute π_old and π_ref
// log-probs with full forwards, then μ policy-gradient updates with the variant's loss. The reference
// policy is refreshed every N steps. Sources of prompts and rewards are plugged in (tasks, safety), so
// this file knows no task. The objective and its variants are written out in losses.ts. Deviations
// from the paper: π_old is recomputed with a training forward (not taken from the sampler, whose
// numerics differ slightly); DAPO's dynamic sampling drops zero-variance groups, re-drawing only under
// refillRounds. Every log-prob (π_θ, π_old, π_ref) is of the sampled distribution, logits / temperature, as
// verl computes them.
// Not here: value models, neural reward models for reasoning, sequence packing.
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import { allgather, allreduceGrads, allreduceSum, shareOf, world } from "../engine/dist.js";
import { encodeWeights, readWeights } from "../model/checkpoint.js";
import { modelFromTensors, tokenLogprobs, type Model } from "../model/transformer.js";
import { adapterSnapshot, mergedTensors, trainableParams } from "../model/lora.js";
import { encodeSafetensors, readSafetensors } from "../model/safetensors.js";
import { generate, type Intervene } from "../model/sampler.js";
import { generateFlops, trainFlops } from "../model/flops.js";
import { completionText, endId, padId, promptIds } from "../tokenizer/chat.js";
import { toolOf } from "../tasks/eval.js";
import type { Calculator } from "../tasks/task.js";
import { overlongPenalty, reflectionCount, type RewardResult } from "../tasks/rewards.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { makeBatch, lrAt, planChunks, type Batch } from "../train/batch.js";
import { runLoop, type LoopOutcome, type StageIO } from "../train/loop.js";
import {
  OptimConfig,
  TrainedWeights,
  adamw,
  readyForStage,
  resumePoint,
  saveStage,
  type Trainee,
} from "../train/supervised.js";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { dropFlatGroups, refilled, type Drawn, type Rollout } from "./groups.js";
import { legalMasks } from "./legal.js";
import { VARIANTS, type LossInput, type LossOutput } from "./losses.js";

export const GrpoConfig = OptimConfig.extend({
  steps: z.number().int().positive(),
  variant: z.enum(["grpo", "dr-grpo", "dapo", "gspo"]).default("grpo"),
  promptsPerStep: z.number().int().positive().default(8),
  groupSize: z.number().int().min(2).default(8),
  temperature: z.number().positive().default(1),
  topP: z.number().gt(0).max(1).default(1),
  maxNewTokens: z.number().int().positive().default(128),
  beta: z.number().min(0).default(0.04),
  eps: z.number().positive().default(0.2),
  /** the upper clip 1 + epsHigh of the variants that decouple it (dapo, gspo; 0.28 unless set) */
  epsHigh: z.number().positive().optional(),
  /** policy updates per rollout batch (μ); the ratio π/π_old differs from 1 only when μ > 1 */
  ppoEpochs: z.number().int().positive().default(1),
  refreshRefEvery: z.number().int().positive().default(50),
  /**
   * up to this many further draws of promptsPerStep prompts while fewer than promptsPerStep groups have unequal
   * rewards; groups with equal rewards are then left out (DAPO's dynamic sampling, re-drawing). 0: one draw
   */
  refillRounds: z.number().int().nonnegative().default(0),
  /** the last tokens before maxNewTokens over which dapo's overlong shaping falls to −1 (16 unless set) */
  overlongCache: z.number().int().nonnegative().optional(),
  /** completions per forward/backward in the update (default: all at once); bounds memory, not the result */
  microBatch: z.number().int().positive().optional(),
  /**
   * the policy is the softmax over the tokens the calculator's referee allows, wherever it judges: the
   * distribution the sampler draws from when it redraws refused picks, so those picks are trained too
   */
  legalPolicy: z.boolean().default(false),
  /** rollouts keep their KV cache in bfloat16: half its memory (π_old is recomputed in float32 either way) */
  kvCacheBf16: z.boolean().default(false),
  ...TrainedWeights,
}).extend({
  lr: z.number().positive().default(5e-5),
  warmup: z.number().int().nonnegative().default(5),
  weightDecay: z.number().min(0).default(0),
});
export type GrpoConfig = z.infer<typeof GrpoConfig>;

const VARIANT_ONLY = [
  { key: "overlongCache", flag: "overlong", does: "shapes the reward", otherwise: "ignores it" },
  { key: "epsHigh", flag: "clipHigh", does: "clips the ratio", otherwise: "clips at 1 ± eps" },
] as const;

/** Why a step's draws would not fit its block of 4,096 sampling seeds (see rollout), or null when they fit. */
export function drawsIssue(s: Pick<GrpoConfig, "refillRounds" | "promptsPerStep" | "groupSize">): string | null {
  const n = (s.refillRounds + 1) * s.promptsPerStep * s.groupSize;
  return n <= 4096
    ? null
    : `refillRounds ${s.refillRounds}: (refillRounds + 1) × promptsPerStep × groupSize must be at most 4,096, got ` +
        `${n}; lower refillRounds, promptsPerStep or groupSize`;
}

/**
 * A GRPO stage's settings together, refused when its recipe is read (`.superRefine(grpoSettings)`): settings only
 * some variants read (set under another variant they would change nothing), and draws that fit their seeds.
 */
export function grpoSettings(
  s: Pick<GrpoConfig, "variant" | "overlongCache" | "epsHigh" | "refillRounds" | "promptsPerStep" | "groupSize">,
  ctx: z.RefinementCtx,
) {
  const draws = drawsIssue(s);
  if (draws) ctx.addIssue({ code: "custom", path: ["refillRounds"], message: draws });
  for (const o of VARIANT_ONLY) {
    if (s[o.key] === undefined || VARIANTS[s.variant]![o.flag]) continue;
    const readers = Object.values(VARIANTS).filter((x) => x[o.flag]);
    ctx.addIssue({
      code: "custom",
      path: [o.key],
      message:
        `${o.key} ${o.does} only under variant ${readers.map((x) => x.name).join(" or ")}; ` +
        `variant ${s.variant} ${o.otherwise}: remove it or change the variant`,
    });
  }
}

/** GRPO's per-step metrics that are wall-clock timings: they differ between otherwise identical runs. */
export const GRPO_TIMINGS = ["tokensPerSec", "sampleMs", "gatherMs", "updateMs"] as const;

/** Where prompts and rewards come from: a task, a safety mix, … */
export interface PromptSource<I> {
  draw(rng: Rng, n: number): I[];
  prompt(item: I): string;
  reward(completion: string, item: I): RewardResult;
  /** a tool writing into the item's completions as they are sampled (Task.calculator); its tokens are not trained */
  calculator?(item: I): Calculator | undefined;
}

/** Per-token log-probs of `targets` (no gradient), and the mean entropy over entropyMask's positions. */
function chunkLogprobs(
  model: Model,
  ids: Int32Array,
  targets: Int32Array,
  B: number,
  T: number,
  entropyMask: Float32Array | undefined,
  allowed: (Uint8Array | null)[] | undefined,
  temperature: number,
): { logp: Float32Array; entropy: number } {
  return E.noGrad(() => {
    const ent = entropyMask && { mask: entropyMask, out: new Float32Array(B * T) };
    const logp = Float32Array.from(tokenLogprobs(model, ids, targets, B, T, ent, allowed, temperature).data);
    let entropy = 0,
      n = 0;
    if (ent)
      for (let r = 0; r < B * T; r++)
        if (entropyMask![r]) {
          entropy += ent.out[r]!;
          n++;
        }
    E.endStep();
    return { logp, entropy: n ? entropy / n : 0 };
  });
}

/** 1 where a sequence's token is trained: the completion's, except those a tool wrote (forced, completion indices). */
export function lossMask(promptLen: number, completionLen: number, forced: readonly number[] = []): number[] {
  const mask = [...new Array<number>(promptLen).fill(0), ...new Array<number>(completionLen).fill(1)];
  for (const j of forced) mask[promptLen + j] = 0;
  return mask;
}

/** The source's tool for the completion at local index i of this rank's share (groups of groupSize per item). */
function toolFor<I>(
  tok: Tokenizer,
  src: PromptSource<I>,
  items: I[],
  i0: number,
  groupSize: number,
): (i: number) => Intervene | undefined {
  return (i) => {
    const calc = src.calculator?.(items[Math.floor((i0 + i) / groupSize)]!);
    return calc && toolOf(tok, calc);
  };
}

function rollout<I>(
  t: Trainee,
  src: PromptSource<I>,
  cfg: GrpoConfig,
  rng: Rng,
  stepSeed: number,
  round = 0,
): Drawn<I> {
  const items = src.draw(rng, cfg.promptsPerStep),
    endToken = endId(t.tokenizer);
  const prompts = items.map((it) => promptIds(t.tokenizer, src.prompt(it)));
  const all = prompts.flatMap((p) => Array.from({ length: cfg.groupSize }, () => p));
  // each MPI rank samples and scores whole groups (a contiguous share), then every rank gathers all of them
  const [i0, i1] = shareOf(all.length, cfg.groupSize),
    shaping = VARIANTS[cfg.variant]!.overlong;
  const mine = generate(
    t.model,
    all.slice(i0, i1),
    all.map((_, i) => stepSeed * 4096 + round * all.length + i).slice(i0, i1),
    {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      topP: cfg.topP,
      stopTokens: [endToken],
      decode: (ids) => completionText(t.tokenizer, ids),
      kvBf16: cfg.kvCacheBf16,
      intervene: src.calculator && toolFor(t.tokenizer, src, items, i0, cfg.groupSize),
    },
  ).map((sample, k) => {
    const r = src.reward(sample.text, items[Math.floor((i0 + k) / cfg.groupSize)]!);
    const shaped = shaping ? overlongPenalty(sample.tokens.length, cfg.maxNewTokens, cfg.overlongCache ?? 16) : 0;
    // the picks the calculator's referee changed, logged when a calculator samples
    const refused: Record<string, number> = src.calculator ? { refused: sample.refused?.length ?? 0 } : {};
    return {
      sample,
      reward: r.reward + shaped,
      metrics: { ...r.metrics, reflections: reflectionCount(sample.text), ...refused },
    };
  });
  const tGather = performance.now();
  const scored = allgather(mine).flat(),
    gatherMs = performance.now() - tGather,
    samples = scored.map((x) => x.sample),
    metrics = scored.map((x) => x.metrics);
  const seqs: number[][] = [],
    masks: number[][] = [];
  const rewards = Float32Array.from(scored.map((x) => x.reward)),
    group = Int32Array.from(scored.map((_, i) => Math.floor(i / cfg.groupSize)));
  samples.forEach((s, i) => {
    const p = all[i]!,
      completion = [...s.tokens, ...(s.finishReason === "stop" ? [endToken] : [])];
    seqs.push([...p, ...completion]);
    // a redrawn pick is a sample of the legal-token policy; only the tool's own tokens stay untrained
    const untrained = cfg.legalPolicy ? s.forced?.filter((j) => !s.refused?.includes(j)) : s.forced;
    masks.push(lossMask(p.length, completion.length, untrained));
  });
  return {
    items,
    promptLens: all.map((p) => p.length),
    seqs,
    masks,
    samples,
    rewards,
    group,
    metrics,
    prompts: prompts.reduce((a, p) => a + p.length * cfg.groupSize, 0),
    gatherMs,
  };
}

/**
 * Under legalPolicy: the referee's legal tokens at the trained positions of the kept completions (ro.allowed);
 * a pick the referee let stand because it refused every token is left out of the loss.
 */
function legalize<I>(
  ro: Drawn<I>,
  keep: readonly number[],
  src: PromptSource<I>,
  tok: Tokenizer,
  groupSize: number,
): void {
  ro.allowed = [];
  // one calculator per prompt: its referee's move cache then serves the whole group
  const calcs = new Map<number, Calculator | undefined>();
  for (const i of keep) {
    const g = Math.floor(i / groupSize);
    if (!calcs.has(g)) calcs.set(g, src.calculator?.(ro.items[g]!));
    const calc = calcs.get(g);
    if (!calc) continue;
    const p = ro.promptLens[i]!,
      seq = ro.seqs[i]!,
      mask = ro.masks[i]!,
      at = [...mask.keys()].filter((x) => mask[x]).map((x) => x - p);
    const legal = legalMasks(tok, calc, seq.slice(p), at),
      row: (Uint8Array | null)[] = [];
    at.forEach((j, k) => {
      const m = legal[k]!;
      if (m === false) mask[p + j] = 0;
      else row[p + j] = m;
    });
    ro.allowed[i] = row;
  }
}

/** Kept completions padded to their own longest, and where their trained tokens sit: [row-major position, token j]. */
interface Chunk {
  batch: Batch;
  at: (readonly [number, number])[];
  /** per row, the tokens its softmax is over (legalPolicy), absent: every token */
  allowed?: (Uint8Array | null)[];
  /** the MPI rank that computes it */
  rank: number;
}

/**
 * The kept completions as chunks of up to `mb` rows, planned by planChunks (rows longest first round the ranks,
 * each chunk padded only to its own longest), each with the rank that trains it, and the loss's token index:
 * token j belongs to kept completion seq[j] (its index in `keep`).
 */
function chunked(
  seqs: readonly (readonly number[])[],
  masks: readonly (readonly number[])[],
  keep: readonly number[],
  mb: number,
  maxT: number,
  pad: number,
  allowed?: Rollout["allowed"],
): { chunks: Chunk[]; seq: Int32Array; seqLen: Int32Array } {
  const plan = planChunks(
    keep.map((i) => seqs[i]!.length),
    maxT,
    world().size,
    mb,
  );
  const chunks: Chunk[] = [],
    seq: number[] = [],
    seqLen = new Int32Array(keep.length);
  plan.forEach((rankChunks, rank) => {
    for (const ks of rankChunks) {
      const batch = makeBatch(
        ks.map((k) => seqs[keep[k]!]!),
        ks.map((k) => masks[keep[k]!]!),
        maxT,
        pad,
      );
      const at: (readonly [number, number])[] = [],
        rows = allowed && new Array<Uint8Array | null>(batch.B * batch.T).fill(null);
      ks.forEach((k, b) => {
        for (let x = 0; x < batch.T; x++)
          if (batch.mask[b * batch.T + x]) {
            at.push([b * batch.T + x, seq.length]);
            seq.push(k);
            seqLen[k]!++;
            if (rows) rows[b * batch.T + x] = allowed![keep[k]!]?.[x + 1] ?? null; // row x predicts token x + 1
          }
      });
      chunks.push({ batch, at, rank, ...(rows && { allowed: rows }) });
    }
  });
  return { chunks, seq: Int32Array.from(seq), seqLen };
}

/** The entries of `arr` at the tokens of this rank's chunks, summed over ranks so that every rank holds all of them. */
function shareEntries(arr: Float32Array, mine: readonly Chunk[]): void {
  if (world().size <= 1) return; // one process computed every entry
  const part = new Float32Array(arr.length);
  for (const c of mine) for (const [, j] of c.at) part[j] = arr[j]!;
  allreduceSum(part);
  arr.set(part);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Per-token log-probs of every chunk's trained tokens under model m (this rank computes its chunks), and entropy. */
function logprobsOf(m: Model, mine: readonly Chunk[], N: number, withEntropy: boolean, temperature: number) {
  const logp = new Float32Array(N),
    sums = new Float64Array(1);
  for (const c of mine) {
    const { ids, targets, mask, B, T } = c.batch;
    const o = chunkLogprobs(m, ids, targets, B, T, withEntropy ? mask : undefined, c.allowed, temperature);
    for (const [r, j] of c.at) logp[j] = o.logp[r]!;
    sums[0] += o.entropy * c.at.length; // mean → sum
  }
  // the other ranks' entries are zeros here: the sum over ranks is the whole batch's
  allreduceSum(logp);
  allreduceSum(sums);
  return { logp, entropy: sums[0]! / Math.max(1, N) };
}

/**
 * π_old and π_ref log-probs of the kept completions, then μ = cfg.ppoEpochs policy-gradient updates with
 * the variant's loss; `update` applies one optimizer step and returns the gradient norm. Exact shortcuts: with
 * μ = 1 the first update's own forward is π_old (the ratio is 1), and with β = 0 no π_ref forward is run.
 * `nGroups` is the loss's group count: the prompts' when flat groups (zero gradient) are left out only to save work.
 */
export function policyUpdate(
  t: Trainee,
  ref: Model,
  ro: Pick<Rollout, "seqs" | "masks" | "rewards" | "group" | "allowed">,
  keep: number[],
  nGroups: number,
  cfg: GrpoConfig,
  update: () => number,
): { metrics: Record<string, number>; trainedPositions: number; flops: number } {
  const variant = VARIANTS[cfg.variant]!,
    w = world();
  const mb = Math.max(1, cfg.microBatch ?? Infinity);
  const maxT = t.model.config.max_position_embeddings;
  const { chunks, seq, seqLen } = chunked(ro.seqs, ro.masks, keep, mb, maxT, padId(t.tokenizer), ro.allowed);
  const N = seq.length,
    mine = chunks.filter((c) => c.rank === w.rank);
  const fused = cfg.ppoEpochs === 1;
  const old = fused ? { logp: new Float32Array(N), entropy: 0 } : logprobsOf(t.model, mine, N, true, cfg.temperature);
  const groupsKept = [...new Set(keep.map((i) => ro.group[i]!))],
    gIndex = new Map(groupsKept.map((g, j) => [g, j]));
  const rewardsKept = Float32Array.from(keep.map((i) => ro.rewards[i]!)),
    groupOf = Int32Array.from(keep.map((i) => gIndex.get(ro.group[i]!)!));
  const inp: LossInput = {
    logp: new Float32Array(N),
    oldLogp: old.logp,
    refLogp: cfg.beta > 0 ? logprobsOf(ref, mine, N, false, cfg.temperature).logp : old.logp,
    seq,
    seqLen,
    group: groupOf,
    advantages: variant.advantages(rewardsKept, groupOf, groupsKept.length),
    nGroups,
  };
  const params = { eps: cfg.eps, epsHigh: cfg.epsHigh ?? 0.28, beta: cfg.beta, maxLen: cfg.maxNewTokens + 1 };
  let entropySum = 0,
    o: Pick<LossOutput, "loss" | "metrics"> = { loss: 0, metrics: { clipFrac: 0, kl: 0 } },
    gradNorm = 0;
  for (let epoch = 0; epoch < cfg.ppoEpochs; epoch++) {
    for (const c of mine) {
      const { ids, targets, mask, B, T } = c.batch;
      const ent = fused ? { mask, out: new Float32Array(B * T) } : undefined;
      const lp = tokenLogprobs(t.model, ids, targets, B, T, ent, c.allowed, cfg.temperature);
      // a token's gradient depends only on its own sequence's log-probs, so a chunk's gradient is exact with the
      // other chunks' entries not yet refreshed; gradients add up across chunks
      E.backward(
        E.scalarFn(lp, (all) => {
          for (const [r, j] of c.at) inp.logp[j] = all[r]!;
          if (fused) for (const [r, j] of c.at) inp.oldLogp[j] = all[r]!;
          const out = variant.loss(inp, params),
            grad = new Float32Array(all.length);
          for (const [r, j] of c.at) grad[r] = out.grad[j]!;
          return { value: out.loss, grad };
        }),
      );
      if (ent) for (const [r] of c.at) entropySum += ent.out[r]!;
      E.endStep();
    }
    shareEntries(inp.logp, mine);
    if (fused) shareEntries(inp.oldLogp, mine);
    o = variant.loss(inp, params);
    gradNorm = update();
  }
  if (fused) {
    const sums = Float64Array.of(entropySum);
    allreduceSum(sums);
    old.entropy = sums[0]! / Math.max(1, N);
  }
  const positions = chunks.reduce((a, c) => a + c.batch.B * c.batch.T, 0),
    T = Math.max(...chunks.map((c) => c.batch.T));
  const forwards = (fused ? 0 : 1) + (cfg.beta > 0 ? 1 : 0);
  const metrics: Record<string, number> = {
    loss: o.loss,
    clipFrac: o.metrics.clipFrac,
    gradNorm,
    entropy: old.entropy,
  };
  if (cfg.beta > 0) metrics.kl = o.metrics.kl; // with β = 0 no π_ref forward is run, so no KL is measured
  return {
    metrics,
    trainedPositions: positions * cfg.ppoEpochs,
    flops:
      forwards * generateFlops(t.model.config, positions, T) + trainFlops(t.model.config, positions * cfg.ppoEpochs, T),
  };
}

export function trainGrpo<I>(
  io: StageIO,
  init: () => Trainee,
  src: PromptSource<I>,
  cfg: GrpoConfig,
  stageConfig: unknown,
): LoopOutcome & { trainee: Trainee } {
  const variant = VARIANTS[cfg.variant];
  if (!variant) throw new FrugalError("CONFIG", `unknown GRPO variant ${cfg.variant}`);
  const draws = drawsIssue(cfg); // a recipe's stages were refused at reading; this is for direct callers
  if (draws) throw new FrugalError("CONFIG", draws);
  const resumed = resumePoint(io);
  const t = resumed?.trainee ?? init();
  readyForStage(t, cfg, resumed !== null, io.seed);
  const params = trainableParams(t.model),
    opt = resumed?.opt ?? E.adamwInit(params),
    ac = adamw(cfg);
  // with LoRA the reference shares the frozen base and keeps its own adapters (ref-adapter.safetensors)
  const refFile = join(io.dir, "checkpoint", t.model.lora ? "ref-adapter.safetensors" : "ref.safetensors");
  const snapshot = (): Model =>
    adapterSnapshot(t.model) ?? modelFromTensors(t.model.config, mergedTensors(t.model), "reference policy");
  let ref: Model = snapshot();
  if (resumed && existsSync(refFile))
    ref = t.model.lora
      ? adapterSnapshot(t.model, readSafetensors(refFile).tensors)!
      : readWeights(t.model.config, refFile);

  const out = runLoop(
    io,
    resumed?.step ?? 0,
    cfg.steps,
    (step) => {
      if (step > 0 && step % cfg.refreshRefEvery === 0) ref = snapshot();
      const rng = new Rng(io.seed * 1_000_003 + step),
        t0 = performance.now();
      const first = rollout(t, src, cfg, rng, io.seed * 100_003 + step);
      const flat = dropFlatGroups(first, cfg.promptsPerStep),
        zeroVarFrac = flat.zeroVarFrac;
      const { ro, drawn } =
        cfg.refillRounds > 0
          ? refilled(first, (r) => rollout(t, src, cfg, rng, io.seed * 100_003 + step, r), cfg)
          : { ro: first, drawn: [first] };
      const genMs = performance.now() - t0;
      // flat groups' advantages are 0: without a KL term their gradient is exactly zero, so they are left out
      // (a refill's groups all have unequal rewards)
      const keep =
          cfg.refillRounds === 0 && (variant.dynamicSampling || cfg.beta === 0) ? flat.keep : [...ro.rewards.keys()],
        nGroups = variant.dynamicSampling ? keep.length / cfg.groupSize : cfg.promptsPerStep;
      if (cfg.legalPolicy) legalize(ro, keep, src, t.tokenizer, cfg.groupSize);
      // the step's sample metrics are the first draw's (a refill's kept groups are not a fair sample)
      const lens = first.samples.map((s) => s.tokens.length);
      const metrics: Record<string, number> = {
        reward: mean([...first.rewards]),
        zeroVarFrac,
        lenMean: mean(lens),
        lenMax: Math.max(...lens),
        truncated: mean(first.samples.map((s) => (s.finishReason === "length" ? 1 : 0))),
      };
      // a metric some samples lack (e.g. one only defined for solved samples) is the mean over those that have it
      for (const k of new Set(first.metrics.flatMap((m) => Object.keys(m))))
        metrics[k] = mean(first.metrics.filter((m) => k in m).map((m) => m[k]!));
      const generated = drawn.reduce((a, d) => a + d.samples.reduce((b, x) => b + x.tokens.length, 0), 0),
        promptTokens = drawn.reduce((a, d) => a + d.prompts, 0);
      metrics.tokensPerSec = generated / (genMs / 1000);
      // where a step's time went: sampling (a rank waits in the gather for the ranks whose searches ran longer)
      metrics.sampleMs = genMs;
      metrics.gatherMs = ro.gatherMs; // a refilled rollout holds the gathers of every draw
      if (cfg.refillRounds > 0) Object.assign(metrics, { rounds: drawn.length, keptGroups: ro.items.length });
      let flops = generateFlops(t.model.config, generated + promptTokens, cfg.maxNewTokens),
        trainedPositions = 0;
      if (keep.length > 0) {
        const tUpdate = performance.now();
        const u = policyUpdate(t, ref, ro, keep, nGroups, cfg, () => {
          allreduceGrads(params);
          return E.adamwUpdate(params, opt, ac, lrAt(step, cfg.steps, cfg.lr, cfg.warmup, cfg.minLrFrac));
        });
        Object.assign(metrics, u.metrics, { updateMs: performance.now() - tUpdate });
        trainedPositions = u.trainedPositions;
        flops += u.flops;
      } else Object.assign(metrics, { loss: 0, kl: 0, clipFrac: 0, gradNorm: 0, entropy: 0 });
      return {
        metrics,
        usage: { promptTokens, generatedTokens: generated, trainedTokens: trainedPositions, flops },
      };
    },
    (step) => {
      // the reference policy travels with the checkpoint so a resumed run continues identically
      const refBytes = ref.lora
        ? encodeSafetensors(new Map([...trainableParams(ref)].map(([n, x]) => [n, { shape: x.shape, data: x.data }])))
        : encodeWeights(ref);
      saveStage(io, t, step, stageConfig, opt, undefined, { [basename(refFile)]: refBytes });
    },
  );
  return { ...out, trainee: t };
}
