// Supervised training shared by pretraining, cold-start SFT, rejection-sampling SFT and distillation:
// one step = batch from a deterministic data function of (seed, step), masked cross-entropy, AdamW with
// warmup + cosine, global-norm clipping. Resumes from the stage's own checkpoint. What the examples are
// (whole traces for pretraining, masked completions for SFT) is the caller's business.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { Rng } from "../common/rng.js";
import { FrugalError } from "../common/errors.js";
import * as E from "../engine/index.js";
import { allreduceGrads, allreduceSum, checkSameOnAllRanks, isMain } from "../engine/dist.js";
import { loadOptimizer, saveCheckpoint } from "../model/checkpoint.js";
import { loadModelDir } from "../model/load.js";
import type { Model } from "../model/transformer.js";
import { LoraConfig, prepareForTraining, trainableParams } from "../model/lora.js";
import { keepBaseInBf16 } from "../model/half.js";
import { padId, type SftExample } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { chunkedLossAndBackward, lrAt } from "./batch.js";
import { runLoop, type LoopOutcome, type StageIO } from "./loop.js";

export const OptimConfig = z.object({
  lr: z.number().positive().default(1e-3),
  warmup: z.number().int().nonnegative().default(20),
  minLrFrac: z.number().min(0).max(1).default(0.1),
  weightDecay: z.number().min(0).default(0.1),
  gradClip: z.number().min(0).default(1),
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.95),
});
export type OptimConfig = z.infer<typeof OptimConfig>;

/** What a stage trains and keeps in memory: the fields of every training stage's config. */
export const TrainedWeights = {
  /** train LoRA adapters instead of every weight */
  lora: LoraConfig.optional(),
  /** recompute each layer's activations in the backward instead of keeping them: less memory, ~⅓ more compute */
  activationCheckpointing: z.boolean().default(false),
  /** with lora: keep the frozen base's projections in bfloat16 only (half their memory; read by bf16 kernels) */
  bf16Base: z.boolean().default(false),
};

/**
 * Readies the model a stage trains: a fresh start gets the stage's LoRA adapters (or earlier ones merged in); a
 * resumed one keeps what its checkpoint holds. Checkpointing follows the stage's config either way.
 */
export function readyForStage(
  t: Trainee,
  cfg: { lora?: LoraConfig; activationCheckpointing: boolean; bf16Base: boolean },
  resumed: boolean,
  seed: number,
): void {
  if (cfg.bf16Base && !cfg.lora)
    throw new FrugalError(
      "CONFIG",
      '"bf16Base": true keeps a frozen base in bfloat16, so it needs "lora"; full fine-tuning trains every weight in float32',
    );
  if (!resumed) prepareForTraining(t.model, cfg.lora, seed);
  if (cfg.bf16Base) keepBaseInBf16(t.model);
  t.model.checkpointLayers = cfg.activationCheckpointing;
  checkSameOnAllRanks(
    "starting weights",
    () => weightsFingerprint(t.model),
    "every rank must read the same checkpoint; put the run directory and hf: models on a shared filesystem",
  );
}

/** A cheap fingerprint of every weight (name, sum of squares, first and last value): equal on equal weights. */
export function weightsFingerprint(model: Model): string {
  const sumsq = E.kernels().k.sumsq;
  const one = (p: E.Tensor) =>
    p.bf16
      ? `bf16 ${p.bf16.reduce((h, x) => (Math.imul(h, 31) + x) >>> 0, 0)}`
      : `${sumsq(p.data)}:${p.data[0]}:${p.data[p.size - 1]}`;
  return [...model.params].map(([n, p]) => `${n}:${one(p)}`).join("|");
}

export const SupervisedConfig = OptimConfig.extend({
  steps: z.number().int().positive(),
  batchSize: z.number().int().positive().default(32),
  /** micro-batches per step (gradient accumulation) */
  accumulate: z.number().int().positive().default(1),
  maxLen: z.number().int().positive().default(256),
  ...TrainedWeights,
});
export type SupervisedConfig = z.infer<typeof SupervisedConfig>;

export interface Trainee {
  model: Model;
  tokenizer: Tokenizer;
}

/** The stage's resume checkpoint, if an interrupted run left one. */
export function resumePoint(io: StageIO): { trainee: Trainee; step: number; opt: E.AdamWState | null } | null {
  const dir = join(io.dir, "checkpoint");
  if (!existsSync(join(dir, "frugal.json"))) return null;
  const ck = loadModelDir(dir);
  return {
    trainee: { model: ck.model, tokenizer: ck.tokenizer },
    step: ck.meta?.step ?? 0,
    opt: loadOptimizer(dir, ck.model),
  };
}

export function saveStage(
  io: StageIO,
  t: Trainee,
  step: number,
  config: unknown,
  opt: E.AdamWState | null,
  extra?: Record<string, unknown>,
  extraFiles?: Record<string, Uint8Array>,
): void {
  if (!isMain()) return;
  saveCheckpoint(join(io.dir, "checkpoint"), t.model, {
    meta: { stage: io.name, step, config, ...extra },
    tokenizer: t.tokenizer.toJSON(),
    tokenizerConfig: t.tokenizer.chat?.config,
    optimizer: opt ?? undefined,
    extraFiles,
  });
}

export function adamw(c: OptimConfig): E.AdamWConfig {
  return { beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weightDecay: c.weightDecay, gradClip: c.gradClip };
}

/**
 * Trains `init()` (or the resumed checkpoint) for cfg.steps steps on data(step, rng) examples.
 * `stageConfig` is saved with every checkpoint.
 */
export function trainSupervised(
  io: StageIO,
  init: () => Trainee,
  data: (step: number, rng: Rng, t: Trainee) => SftExample[],
  cfg: SupervisedConfig,
  stageConfig: unknown,
): LoopOutcome & { trainee: Trainee } {
  const resumed = resumePoint(io);
  const t = resumed?.trainee ?? init();
  readyForStage(t, cfg, resumed !== null, io.seed);
  const params = trainableParams(t.model),
    opt = resumed?.opt ?? E.adamwInit(params),
    ac = adamw(cfg);
  const pad = padId(t.tokenizer);
  const out = runLoop(
    io,
    resumed?.step ?? 0,
    cfg.steps,
    (step) => {
      const rng = new Rng(io.seed * 1_000_003 + step);
      let loss = 0,
        tokens = 0,
        positions = 0,
        flops = 0;
      for (let m = 0; m < cfg.accumulate; m++) {
        const ex = data(step * cfg.accumulate + m, rng, t);
        // every rank builds the whole batch's examples (cheap) and trains its chunks of rows
        const r = chunkedLossAndBackward(t.model, ex, cfg.maxLen, pad, 1 / cfg.accumulate);
        loss += r.loss;
        tokens += r.tokens;
        positions += r.positions;
        flops += r.flops;
      }
      const sums = Float64Array.of(loss);
      allreduceSum(sums);
      loss = sums[0]!;
      allreduceGrads(params);
      const lr = lrAt(step, cfg.steps, cfg.lr, cfg.warmup, cfg.minLrFrac);
      const gradNorm = E.adamwUpdate(params, opt, ac, lr);
      return {
        metrics: { loss, lr, gradNorm, tokens },
        usage: {
          promptTokens: 0,
          generatedTokens: 0,
          trainedTokens: positions,
          flops,
        },
      };
    },
    (step) => saveStage(io, t, step, stageConfig, opt),
  );
  return { ...out, trainee: t };
}
