// Training the guard as a pipeline stage: a byte-level BPE fitted on the training split's text, a fresh
// small transformer read by pooling its states (mean, max or both), cross-entropy on the one label token,
// then the threshold tuned on the dev split and a report on the held-out test sets. Prompts and completions are both
// taught:
// a completion is judged by what it gives, so refusals of harmful requests are safe and compliance is not.
// Under MPI the ensemble's members are split whole between the ranks, and its verdicts for the threshold and the
// report too; nothing here is data-parallel.
import { z } from "zod";
import { Rng } from "../common/rng.js";
import { parseModelConfig } from "../model/config.js";
import { initModel } from "../model/transformer.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import * as E from "../engine/index.js";
import { isMain, world } from "../engine/dist.js";
import { trainFlops } from "../model/flops.js";
import { forwardPooled, POOLINGS } from "../model/pooling.js";
import { chunkedLossAndBackward, lrAt, wholeRowBatches } from "../train/batch.js";
import { addUsage, noUsage, runLoop, type LoopOutcome, type StageIO } from "../train/loop.js";
import { memberIO as sharedMemberIO, trainOwnShare } from "../train/members.js";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FrugalError, internal } from "../common/errors.js";
import { encodeWeights } from "../model/checkpoint.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { adamw, resumePoint, saveStage, SupervisedConfig, type Trainee } from "../train/supervised.js";
import {
  drawItem,
  GUARD_MIX,
  heldOutSets,
  howCore,
  privacyItem,
  stereotypeItem,
  taskItem,
  type SafetyItem,
} from "./corpus.js";
import { holdOutSources, rowsOf } from "./rows.js";
import {
  Guard,
  guardIds,
  labelTokens,
  memberFile,
  packGuard,
  SAFE_LABEL,
  withLabelTokens,
  classifyShared,
  type GuardMode,
} from "./guard.js";
import { family, familyBy, HARMFUL, LOOKALIKES } from "./lists.js";
import { CONCEPTS, EVERYDAY } from "./lists.js";
import { probeSets } from "./probe.js";
import { benignCompletion, refusalCompletion } from "./policy.js";
import { renderCompletion } from "../tokenizer/chat.js";
import { trainWordGuard, WORDS_FILE, WordGuard, WordGuardConfig, type WordExample } from "./word-guard.js";
import { SENTENCES_FILE, SentenceGuard, SentenceGuardConfig, trainSentenceGuard } from "./sentence-guard.js";
import { LOSO_FILE, LosoConfig, losoSources, pooledRates, scoreSource, type LosoReport, type LosoRow } from "./loso.js";

/**
 * The guard stage's own settings; recipe.ts adds the stage's type, name and model shape. No maxLen (a guard
 * reads up to its model's context, longer inputs in windows) and no accumulate (one batch per step).
 */
export const GuardConfig = SupervisedConfig.omit({ maxLen: true, accumulate: true }).extend({
  /** byte-level BPE vocabulary (before the label tokens) */
  vocabSize: z.number().int().min(300).default(2048),
  /** share of training examples that are completions rather than prompts */
  completionFrac: z.number().min(0).max(1).default(0.25),
  /** the threshold is set so that at most this share of dev benign prompts is flagged */
  targetBenignFlagRate: z.number().gt(0).lt(1).default(0.02),
  /** dev-split prompts drawn to tune the threshold */
  devItems: z.number().int().positive().default(3000),
  /** next-token steps on the training split's English text before the classifier steps (0 = none) */
  lmSteps: z.number().int().min(0).default(0),
  /** how the classifier reads the hidden states: "mean" over positions, per-channel "max", or "mean+max" */
  pooling: z.enum(POOLINGS).default("mean"),
  /** models trained from different seeds whose label probabilities are averaged (1 = a single model) */
  members: z.number().int().min(1).max(8).default(1),
  /** after the guard: one guard per source trained without it and tested on it (loso.json beside the checkpoint) */
  leaveOneOut: LosoConfig.optional(),
  /** a word-vector member (pretrained English word vectors) mixed into each prompt's P(unsafe) */
  wordVectors: WordGuardConfig.optional(),
  /** a sentence member (a pretrained English sentence encoder) mixed into each prompt's P(unsafe), last */
  sentenceVectors: SentenceGuardConfig.optional(),
});
export type GuardStageConfig = z.infer<typeof GuardConfig> & { name: string; model: Record<string, unknown> };

/** A completion that does what was asked (unsafe when the request was). */
export function complianceCompletion(request: string): string {
  const core = howCore(request) ?? request.replace(/[.?!\s]+$/, "");
  return renderCompletion(
    `The user wants me to ${core}. Let me work out the steps.`,
    `Sure, here is how to ${core}. Step 1:`,
  );
}

/** A guard training example: text in a mode and the label it must give. */
export function guardExample(item: SafetyItem, mode: GuardMode, rng: Rng): { text: string; label: string } {
  const hazardLabel = `<|${item.hazard ?? "S2"}|>`;
  if (mode === "prompt") return { text: item.text, label: item.unsafe ? hazardLabel : SAFE_LABEL };
  if (!item.unsafe)
    return { text: rng.next() < 0.3 ? benignCompletion() : complianceCompletion(item.text), label: SAFE_LABEL };
  return rng.next() < 0.5
    ? { text: refusalCompletion(item.hazard ?? "S2"), label: SAFE_LABEL }
    : { text: complianceCompletion(item.text), label: hazardLabel };
}

/** The English the guard's BPE is fitted on: training-split rows and the trained family of each phrase list only. */
export function guardCorpus(): string[] {
  const texts = rowsOf("train").map((r) => r.prompt),
    trained = familyBy(CONCEPTS, (c) => c.name, false);
  texts.push(
    ...family(LOOKALIKES, false),
    ...Object.values(HARMFUL).flatMap((ps) => family(ps, false)),
    ...trained.flatMap((c) => [c.name, ...c.acts]),
    ...family(EVERYDAY, false),
    benignCompletion(),
    ...Object.keys(HARMFUL).map(refusalCompletion),
  );
  const rng = new Rng(0x7a5c);
  for (let i = 0; i < 200; i++) texts.push(taskItem(rng, false).text);
  for (let i = 0; i < 300; i++) texts.push(privacyItem(rng, false).text, stereotypeItem(rng, false).text);
  return texts;
}

/** A fresh guard's initialiser; the BPE (fitted on the corpus as the held-out sources leave it) is fitted once. */
function guardInit(cfg: GuardStageConfig) {
  let tokenizer: Tokenizer | null = null;
  return (seed: number) => (): Trainee => {
    tokenizer ??= withLabelTokens(trainBpe(guardCorpus(), cfg.vocabSize));
    const config = parseModelConfig(
      { ...cfg.model, model_type: "llama", vocab_size: tokenizer.vocabSize },
      `stage ${cfg.name}.model`,
    );
    return { model: initModel(config, seed), tokenizer };
  };
}

/**
 * The guard stage. Ensemble members 1…n−1 train first, each in its own folder (member-m/, with its own
 * checkpoint, metrics and resume) from seed + 1009·m; member 0 trains in the stage folder itself. All share
 * one BPE (deterministic from the corpus). The final checkpoint holds member 0 as model.safetensors and the
 * others as member-m.safetensors, with the threshold tuned on the averaged probabilities.
 */
export function trainGuard(io: StageIO, cfg: GuardStageConfig) {
  const init = guardInit(cfg);
  const split = trainShares(io, cfg, init);
  if (split.stopped) return { ...split, notes: {}, trainee: init(io.seed)() }; // (its checkpoint is on disk)
  let usage = split.usage,
    steps = split.steps;
  const members: Trainee[] = [];
  for (let m = 1; m < cfg.members; m++) {
    const mio = memberIO(io, m);
    const o = trainClassifier(mio, init(mio.seed), cfg);
    ((usage = addUsage(usage, o.usage)), (steps += o.steps));
    if (o.stopped) return { steps, stopped: o.stopped, usage, notes: {}, trainee: o.trainee };
    members.push(o.trainee);
  }
  const out = trainClassifier(io, init(io.seed), cfg);
  ((usage = addUsage(usage, out.usage)), (steps += out.steps));
  if (out.stopped) return { ...out, steps, usage, notes: {} };
  const vocab = JSON.stringify(out.trainee.tokenizer.toJSON());
  if (members.some((m) => JSON.stringify(m.tokenizer.toJSON()) !== vocab))
    throw new FrugalError(
      "GUARD",
      `internal: ${io.name}'s ensemble members have different tokenizers; delete ${io.dir} and rerun the stage`,
    );
  const others = members.map((m) => m.model),
    pooling = cfg.pooling;
  const wo = englishMembers(io, cfg);
  ((usage = addUsage(usage, wo.usage)), (steps += wo.steps));
  if (wo.stopped) return { ...out, steps, usage, stopped: wo.stopped, notes: {} };
  const guardAt = (threshold: number) =>
    new Guard(out.trainee.model, out.trainee.tokenizer, threshold, pooling, others, wo.words, wo.sentences);
  const threshold = tuneThreshold(guardAt(0.5), cfg.targetBenignFlagRate, io.seed, cfg.devItems);
  const files = Object.fromEntries(others.map((m, i) => [memberFile(i + 1), encodeWeights(m)]));
  if (wo.words) files[WORDS_FILE] = wo.words.encode();
  if (wo.sentences) files[SENTENCES_FILE] = wo.sentences.encode();
  saveStage(
    io,
    out.trainee,
    cfg.lmSteps + cfg.steps, // the step reached (out.steps counts only this run's, 0 when resumed at the end)
    cfg,
    null,
    {
      threshold,
      labels: labelTokens(),
      pooling,
      members: cfg.members,
      ...(wo.words ? { words: wo.words.cfg } : {}),
      ...(wo.sentences ? { sentences: wo.sentences.cfg } : {}),
    },
    files,
  );
  const report = guardReport(guardAt(threshold));
  if (!cfg.leaveOneOut) return { ...out, steps, usage, notes: { threshold, ...report } };
  const loso = leaveOneSourceOut(io, cfg, cfg.leaveOneOut);
  ((usage = addUsage(usage, loso.usage)), (steps += loso.steps));
  if (loso.stopped) return { ...out, steps, usage, stopped: loso.stopped, notes: {} };
  const pooled = loso.report!.pooled;
  return {
    ...out,
    steps,
    usage,
    notes: { threshold, ...report, losoUnsafeFlagRate: pooled.unsafeFlagRate, losoSafeFlagRate: pooled.safeFlagRate },
  };
}

/** Member m's own folder and seed (member 0 is the stage itself). */
const memberIO = (io: StageIO, m: number): StageIO => (m === 0 ? io : sharedMemberIO(io, m));

/**
 * The guard's units of work in one process's order, each with its cost relative to a transformer member (as
 * measured with the speedrun's guard: a member's steps in chunks of like length, the word member's vectors and
 * steps, the sentence member's encoder reading its pool).
 */
export function guardUnits(cfg: Pick<GuardStageConfig, "members" | "wordVectors" | "sentenceVectors">) {
  const units: { unit: string; cost: number }[] = [];
  for (let m = 1; m <= cfg.members; m++) units.push({ unit: `member-${m % cfg.members}`, cost: 1 });
  if (cfg.wordVectors) units.push({ unit: "words", cost: 1.05 });
  if (cfg.sentenceVectors) units.push({ unit: "sentences", cost: 2.1 });
  return units;
}

/**
 * Which rank trains each unit: member 0 (the stage's own folder) on rank 0, the rest costliest first to the least
 * loaded rank (ties to the lowest), the same on every rank.
 */
export function assignUnits(units: readonly { unit: string; cost: number }[], ranks: number): number[] {
  const load = new Array<number>(ranks).fill(0),
    owner = new Array<number>(units.length).fill(0);
  const first = (i: number) => (units[i]!.unit === "member-0" ? 0 : 1);
  const order = units.map((u, i) => i).sort((a, b) => first(a) - first(b) || units[b]!.cost - units[a]!.cost || a - b);
  for (const i of order) {
    const r = first(i) === 0 ? 0 : load.indexOf(Math.min(...load));
    ((owner[i] = r), (load[r] += units[i]!.cost));
  }
  return owner;
}

/**
 * Under MPI, each rank first trains its share of the units whole, alone (`solo`: its own folder, checkpoint and
 * resume), and all wait; the stage then reads every finished unit back from its folder, as a resumed stage does
 * (a rank that cannot see another's folder trains that unit itself). One process: nothing to do here.
 */
function trainShares(io: StageIO, cfg: GuardStageConfig, init: (seed: number) => () => Trainee): LoopOutcome {
  const { rank, size } = world();
  if (size <= 1) return { steps: 0, usage: noUsage(), stopped: null };
  const units = guardUnits(cfg),
    owner = assignUnits(units, size);
  const mine = units
    .filter((_, i) => owner[i] === rank)
    .map(({ unit }) => (): LoopOutcome => {
      if (!unit.startsWith("member-")) return englishMembers(io, cfg, unit);
      const mio = memberIO(io, Number(unit.slice("member-".length)));
      return trainClassifier(mio, init(mio.seed), cfg);
    });
  return trainOwnShare(mine);
}

/** A training prompt drawn as the transformers' are. */
const drawPrompt = (rng: Rng): WordExample => {
  const it = drawItem(rng, "train", GUARD_MIX);
  return { text: it.text, unsafe: it.unsafe };
};

/**
 * The stage's English members (none without `wordVectors` / `sentenceVectors`), trained on prompts drawn as the
 * transformers' are, in <dir>/words and <dir>/sentences; one already saved there (a finished fold, or a resumed
 * stage) is read back instead.
 */
function englishMembers(
  io: StageIO,
  cfg: GuardStageConfig,
  only?: string,
): LoopOutcome & { words: WordGuard | null; sentences: SentenceGuard | null } {
  let usage = noUsage(),
    steps = 0;
  const member = <M extends { encode(): Buffer }, C>(
    key: string,
    file: string,
    mc: C | undefined,
    load: (f: string, c: C) => M,
    train: (io: StageIO, c: C, draw: typeof drawPrompt) => LoopOutcome & { guard: M },
  ): { m: M | null; stopped: LoopOutcome["stopped"] } => {
    if (!mc || (only && only !== key)) return { m: null, stopped: null };
    const dir = join(io.dir, key),
      f = join(dir, file);
    if (existsSync(f)) return { m: load(f, mc), stopped: null };
    const o = train({ ...io, name: `${io.name}/${key}`, dir }, mc, drawPrompt);
    ((usage = addUsage(usage, o.usage)), (steps += o.steps));
    if (!o.stopped && isMain()) writeFileSync(f, o.guard.encode());
    return { m: o.stopped ? null : o.guard, stopped: o.stopped };
  };
  const w = member("words", WORDS_FILE, cfg.wordVectors, WordGuard.load, trainWordGuard);
  if (w.stopped) return { steps, usage, stopped: w.stopped, words: null, sentences: null };
  const s = member("sentences", SENTENCES_FILE, cfg.sentenceVectors, SentenceGuard.load, trainSentenceGuard);
  return { steps, usage, stopped: s.stopped, words: w.m, sentences: s.m };
}

/**
 * One single-model guard per source, trained with that source held out of everything (loso/<source>/, each
 * with its own checkpoint and resume, its scored rows kept in result.json), then loso.json in the checkpoint.
 */
function leaveOneSourceOut(io: StageIO, cfg: GuardStageConfig, lc: LosoConfig) {
  const t0 = Date.now(),
    one = { ...cfg, lmSteps: lc.lmSteps ?? cfg.lmSteps, steps: lc.steps ?? cfg.steps, members: 1 };
  let usage = noUsage(),
    steps = 0;
  const rows: LosoRow[] = [];
  for (const source of losoSources(lc.sources)) {
    const dir = join(io.dir, "loso", source.replace(/[^\w.-]+/g, "_")),
      result = join(dir, "result.json");
    if (existsSync(result)) {
      rows.push(...(JSON.parse(readFileSync(result, "utf8")) as LosoRow[]));
      continue;
    }
    const restore = holdOutSources([source]);
    try {
      const sio: StageIO = { ...io, name: `${io.name}/loso-${source}`, dir };
      const o = trainClassifier(sio, guardInit(one)(io.seed), one);
      ((usage = addUsage(usage, o.usage)), (steps += o.steps));
      if (o.stopped) return { steps, usage, stopped: o.stopped, report: null };
      const wo = englishMembers(sio, one);
      ((usage = addUsage(usage, wo.usage)), (steps += wo.steps));
      if (wo.stopped) return { steps, usage, stopped: wo.stopped, report: null };
      const { model, tokenizer } = o.trainee,
        guardAt = (t: number) => new Guard(model, tokenizer, t, cfg.pooling, [], wo.words, wo.sentences),
        g = guardAt(tuneThreshold(guardAt(0.5), cfg.targetBenignFlagRate, io.seed, cfg.devItems));
      const otherSafe = rowsOf("test") // the held-out source is gone from every split here
        .filter((r) => !r.unsafe)
        .slice(0, 1500)
        .map((r) => r.prompt);
      const scored = scoreSource(g, source, otherSafe);
      if (isMain()) writeFileSync(result, JSON.stringify(scored, null, 1));
      rows.push(...scored);
    } finally {
      restore();
    }
  }
  const report: LosoReport = {
    lmSteps: one.lmSteps,
    steps: one.steps,
    rows,
    pooled: pooledRates(rows),
    wallMs: Date.now() - t0,
  };
  if (isMain()) writeFileSync(join(io.dir, "checkpoint", LOSO_FILE), JSON.stringify(report, null, 1));
  return { steps, usage, stopped: null, report };
}

/**
 * The guard's loop. Steps below lmSteps read English: next-token loss on texts of the training split, so
 * the trunk learns which words go together before it learns labels; the rest classify: pooled logits,
 * cross-entropy on the label token. One AdamW and one learning-rate schedule over both.
 */
function trainClassifier(io: StageIO, init: () => Trainee, cfg: GuardStageConfig): LoopOutcome & { trainee: Trainee } {
  const resumed = resumePoint(io),
    t = resumed?.trainee ?? init(),
    total = cfg.lmSteps + cfg.steps;
  const params = t.model.params,
    opt = resumed?.opt ?? E.adamwInit(params),
    ac = adamw(cfg),
    maxLen = t.model.config.max_position_embeddings;
  const out = runLoop(
    io,
    resumed?.step ?? 0,
    total,
    (step) => {
      const rng = new Rng(io.seed * 1_000_003 + step);
      const r = step < cfg.lmSteps ? lmStep(t, rng, cfg.batchSize, maxLen) : classifyStep(t, rng, cfg, maxLen);
      const lr = lrAt(step, total, cfg.lr, cfg.warmup, cfg.minLrFrac);
      const gradNorm = E.adamwUpdate(params, opt, ac, lr);
      return {
        metrics: { loss: r.loss, lr, gradNorm, lm: step < cfg.lmSteps ? 1 : 0 },
        usage: {
          promptTokens: 0,
          generatedTokens: 0,
          trainedTokens: r.tokens,
          flops: r.flops,
        },
      };
    },
    (step) => saveStage(io, t, step, cfg, opt),
  );
  return { ...out, trainee: t };
}

/** One classification batch: forward, loss, backward (the caller updates). */
function classifyStep(
  t: Trainee,
  rng: Rng,
  cfg: GuardStageConfig,
  maxLen: number,
): { loss: number; tokens: number; flops: number } {
  const seqs: number[][] = [],
    labels: number[] = [];
  for (let i = 0; i < cfg.batchSize; i++) {
    const mode: GuardMode = rng.next() < cfg.completionFrac ? "completion" : "prompt";
    const ex = guardExample(drawItem(rng, "train", GUARD_MIX), mode, rng);
    seqs.push(guardIds(t.tokenizer, ex.text, mode, maxLen));
    labels.push(t.tokenizer.tokenId(ex.label));
  }
  // rows of like length in chunks, each chunk's mean weighted by its share of the rows
  let value = 0,
    positions = 0,
    flops = 0;
  for (const rows of wholeRowBatches(seqs.map((s) => s.length))) {
    const { ids, B, T, lengths } = packGuard(rows.map((i) => seqs[i]!));
    const pooled = forwardPooled(t.model, ids, B, T, lengths, cfg.pooling),
      loss = E.crossEntropy(
        pooled,
        Int32Array.from(rows, (i) => labels[i]!),
      );
    value += (loss.item() * B) / seqs.length;
    E.backward(loss, B / seqs.length);
    E.endStep();
    positions += B * T;
    flops += trainFlops(t.model.config, B * T, T);
  }
  return { loss: value, tokens: positions, flops };
}

/** One next-token batch on English text read as the guard reads prompts (a CSV row or a drawn item). */
function lmStep(
  t: Trainee,
  rng: Rng,
  batchSize: number,
  maxLen: number,
): { loss: number; tokens: number; flops: number } {
  const rows = rowsOf("train"),
    seqs: number[][] = [];
  for (let i = 0; i < batchSize; i++) {
    const text = rng.next() < 0.5 ? rng.pick(rows).prompt : drawItem(rng, "train", GUARD_MIX).text;
    seqs.push(guardIds(t.tokenizer, text, "prompt", maxLen).slice(0, -1));
  }
  // the guard's loop sums no gradients between ranks: this process trains every chunk
  const r = chunkedLossAndBackward(
    t.model,
    seqs.map((ids) => ({ ids, mask: ids.map(() => 1) })),
    maxLen,
    0,
    1,
    { rank: 0, size: 1 },
  );
  return { loss: r.loss, tokens: r.positions, flops: r.flops };
}

/**
 * Just above the score of the (⌊rate·n⌋+1)-th highest of n benign scores: flagging at ≥ it flags ⌊rate·n⌋ of
 * them (ties aside), the rule rocSummary reads its rates at.
 */
export function thresholdAtRate(scores: readonly number[], rate: number): number {
  if (!scores.length) throw internal("thresholdAtRate needs at least one score");
  const asc = [...scores].sort((a, b) => a - b),
    allowed = Math.floor(rate * asc.length);
  return asc[Math.max(0, asc.length - 1 - allowed)]! + 1e-6;
}

/** Smallest threshold that flags at most `rate` of dev benign prompts (dev = tuning split, never test). */
export function tuneThreshold(g: Guard, rate: number, seed: number, devItems = 3000): number {
  const rng = new Rng(seed ^ 0xde5);
  const items = Array.from({ length: devItems }, () => drawItem(rng, "dev", GUARD_MIX)).filter((x) => !x.unsafe);
  const q = thresholdAtRate(
    classifyShared(
      g,
      items.map((x) => x.text),
    ).map((v) => v.pUnsafe),
    rate,
  );
  return Math.min(0.95, Math.max(0.01, q));
}

/** Flag rates on every held-out set (prompt mode). */
export function guardReport(g: Guard): Record<string, number> {
  const sets = { ...heldOutSets(), ...probeSets() },
    out: Record<string, number> = {};
  for (const [name, items] of Object.entries(sets)) {
    const v = classifyShared(
      g,
      items.map((x: SafetyItem) => x.text),
    );
    out[`${name}FlagRate`] = v.filter((x) => x.unsafe).length / Math.max(1, v.length);
    out[`${name}N`] = items.length;
  }
  return out;
}
