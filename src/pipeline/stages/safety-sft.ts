// safety-sft: the policy learns to refuse harmful prompts (the policy's refusal, with its category) and to
// answer benign ones, mixed with replays of its own verified task completions so it keeps its capability.
// Optionally grows the policy's BPE on English first, and trains several members merged side by side or averaged.
import { z } from "zod";
import { FrugalError, internal } from "../../common/errors.js";
import { Rng } from "../../common/rng.js";
import { loadModelDir } from "../../model/load.js";
import { averageModels, growVocab, mergedConfig, mergeModels } from "../../model/surgery.js";
import { policyCorpus, safetyExample } from "../../safety/source.js";
import { getTask } from "../../tasks/index.js";
import { extendBpe } from "../../tokenizer/bpe-train.js";
import type { Tokenizer } from "../../tokenizer/tokenizer.js";
import type { StageIO } from "../../train/loop.js";
import { trainCombined } from "../../train/members.js";
import { SupervisedConfig, trainSupervised, type Trainee } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import { mixShapes, SafetyMix, safetyDrawTokens } from "./safety-mix.js";
import type { StageForecast } from "../../cost/forecast.js";
import {
  cachedTraces,
  stageName,
  stageTraceLengths,
  supervisedForecast,
  traceOf,
  verifiedTraces,
  withSampling,
  type Trace,
} from "./shared.js";

export const SafetySft = SupervisedConfig.extend({
  type: z.literal("safety-sft"),
  name: stageName,
  ...SafetyMix,
  /** loss weight of the refuse-or-not token (the first after <think>) relative to the others */
  decisionWeight: z.number().positive().default(16),
  /** loss weight of next-token prediction on the safety prompt's own text (0 = the completion only) */
  promptWeight: z.number().min(0).default(0),
  /**
   * grow the policy's BPE to this many tokens before safety training, with merges learned on the safety
   * training split's English (old ids keep their meaning; a new token's rows start as the mean of its
   * pieces'); unset = keep the pretrained tokenizer. The base reads only arithmetic, so its vocabulary is
   * mostly digits and tags; English needs its own words.
   */
  vocabSize: z.number().int().positive().optional(),
  /**
   * train this many policies (seeds seed + 1009·m, one shared tokenizer), each in member-m/, and make them one
   * model as `merge` says. 1 = a single policy, as wide as its source.
   */
  members: z.number().int().min(1).max(8).default(1),
  /**
   * how members become one model: "side-by-side" (mergeModels, n times as wide, the logits' mean) or "average"
   * (averageModels, the weights' mean: as wide as one member, and it keeps more of the task's long searches)
   */
  merge: z.enum(["side-by-side", "average"]).default("side-by-side"),
  /** the task half is the source model's own verified completions on this many prompts (× 4 samples, T = 1) */
  tracePrompts: z.number().int().positive().default(512),
  /** new tokens per sampled task completion: a countdown search needs ~512, an addition answer < 96 */
  traceTokens: z.number().int().positive().default(96),
  /** sample the task half with the task's calculator, as the countdown rs-sft and eval do */
  calculator: z.boolean().default(false),
  /** each batch is all safety draws or all task traces (drawn per step), so short draws are not padded to searches */
  bucketByKind: z.boolean().default(false),
})
  .strict()
  .refine((s) => !s.calculator || getTask(s.task).calculator, {
    message: "calculator needs a task that has one (countdown); drop it or change the task",
    path: ["calculator"],
  })
  .refine((s) => traceRoom(s) > 0, {
    path: ["traceTokens"],
    error: (iss) => {
      const s = iss.input as { task: string; traceTokens: number; maxLen: number; difficulties?: number[] };
      const prompt = stageTraceLengths(s.task, s.difficulties).maxPrompt;
      return `traceTokens ${s.traceTokens} + the task's longest prompt (${prompt} tokens) must stay under maxLen ${s.maxLen}, or a replayed completion that long is cut before its end; raise maxLen or lower traceTokens`;
    },
  });
export type SafetySft = z.infer<typeof SafetySft>;

/** Positions left in maxLen after the task's longest prompt and traceTokens of completion (> 0 to fit). */
function traceRoom(s: { task: string; difficulties?: number[]; traceTokens: number; maxLen: number }): number {
  return s.maxLen - stageTraceLengths(s.task, s.difficulties).maxPrompt - s.traceTokens;
}

/**
 * How to move a policy onto its BPE extended to vocabSize with merges learned on the safety training split's
 * English (policyCorpus, as the pretrained tokenizer was); old ids are unchanged. The task's traces must
 * tokenize exactly as before (new merges never touch digits), so the reasoning the model learned reads the
 * same. The tokenizer is learned once here; every policy it is applied to gets that one tokenizer.
 */
function policyVocabGrower(
  base: Tokenizer,
  vocabSize: number,
  seed: number,
  stage: string,
  traces: Trace[],
): (t: Trainee) => Trainee {
  if (vocabSize === base.vocabSize) return (t) => t;
  if (base.kind !== "bpe")
    throw new FrugalError(
      "RECIPE",
      `stage ${stage}: vocabSize grows a BPE policy tokenizer, but this policy's tokenizer is "${base.kind}"; pretrain with "tokenizer": { "type": "bpe", … } or drop vocabSize`,
    );
  if (vocabSize < base.vocabSize)
    throw new FrugalError(
      "RECIPE",
      `stage ${stage}: vocabSize ${vocabSize} is below the policy's ${base.vocabSize} tokens; a tokenizer can only grow`,
    );
  const corpus = policyCorpus(new Rng(seed ^ 0x9e0), 20_000);
  const { tokenizer, pieces } = extendBpe(base, corpus, vocabSize, { singleDigits: true });
  for (const x of traces) {
    const text = x.prompt + x.completion;
    if (JSON.stringify(tokenizer.encode(text)) !== JSON.stringify(base.encode(text)))
      throw internal(
        `stage ${stage}: the grown tokenizer splits a task trace differently (${JSON.stringify(text.slice(0, 60))})`,
      );
  }
  return (t) => ({ model: growVocab(t.model, tokenizer.vocabSize, pieces), tokenizer });
}

/**
 * One batch of s.batchSize rows: each a safety draw with probability safetyFrac and a task trace otherwise, or
 * with bucketByKind one such draw decides the whole batch (a share safetyFrac of the batches are all safety).
 */
export function mixBatch<E>(
  rng: Rng,
  s: { batchSize: number; safetyFrac: number; bucketByKind: boolean },
  safety: () => E,
  task: () => E,
): E[] {
  const safetyBatch = s.bucketByKind ? rng.next() < s.safetyFrac : undefined;
  return Array.from({ length: s.batchSize }, () => ((safetyBatch ?? rng.next() < s.safetyFrac) ? safety() : task()));
}

export const safetySft: StageKind<SafetySft> = {
  type: "safety-sft",
  schema: SafetySft,
  inputs: (s) => [s.from],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    // the task half replays the source model's own verified completions (as R1 mixed its rejection-sampled
    // data into safety training); reference traces instead undid GRPO's gains
    const task = getTask(s.task),
      from = env.checkpointOf(s.from);
    const sampling = {
      prompts: s.tracePrompts,
      samplesPerPrompt: 4,
      sampleTemperature: 1,
      maxNewTokens: s.traceTokens,
      calculator: s.calculator,
      difficulties: s.difficulties,
    };
    const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(from), task, sampling, io.seed));
    let grow: ((t: Trainee) => Trainee) | null = null; // the grown tokenizer, learned once for every member
    const init = () => {
      const t = loadModelDir(from);
      if (!s.vocabSize) return t;
      grow ??= policyVocabGrower(t.tokenizer, s.vocabSize, io.seed, s.name, traces);
      return grow(t);
    };
    const train = (mio: StageIO) =>
      trainSupervised(
        mio,
        init,
        (_step, rng, t) =>
          mixBatch(
            rng,
            s,
            () => safetyExample(t.tokenizer, rng, s),
            () => traceOf(traces, rng, t),
          ),
        s,
        s,
      );
    if (s.members === 1) return { ...train(io), notes: { traces: traces.length } };
    // n members (member-m/, seed + 1009·m, own resume) merged side by side or averaged
    const combine = s.merge === "average" ? averageModels : mergeModels;
    const o = trainCombined(io, s.members, train, combine, s, { members: s.members });
    const notes: Record<string, number> = { traces: traces.length, members: s.members };
    return { ...o, notes };
  },
  forecast(s, ctx) {
    const from = ctx.configs.get(s.from)!,
      config = s.vocabSize ? { ...from, vocab_size: s.vocabSize } : from;
    // what the stage hands on: its members side by side (n times as wide) or averaged (as wide as one)
    const wide = s.members > 1 && s.merge === "side-by-side";
    ctx.configs.set(s.name, wide ? mergedConfig(config, s.members) : config);
    if (wide) ctx.members.set(s.name, s.members);
    const L = stageTraceLengths(s.task, s.difficulties),
      taskT = L.maxPrompt + Math.min(L.maxCompletion, s.traceTokens);
    const sampled = (f: StageForecast) =>
      withSampling(f, { prompts: s.tracePrompts, samplesPerPrompt: 4 }, from, L, taskT, ctx);
    if (!s.bucketByKind)
      return sampled(supervisedForecast(s, config, mixShapes(s, s.batchSize, config.vocab_size).meanT, ctx, s.members));
    // one kind per batch: a share safetyFrac of the steps at the safety draws' mean length, the rest at the traces'
    const safetyT = safetyDrawTokens(s.batchSize, s.promptChars, config.vocab_size).mean,
      taskMean = L.prompt + Math.min(L.completion, s.traceTokens);
    const part = (share: number, T: number) =>
      supervisedForecast({ ...s, steps: s.steps * share }, config, T, ctx, s.members);
    const a = part(s.safetyFrac, safetyT),
      b = part(1 - s.safetyFrac, taskMean);
    const detail =
      `${s.members} members × ${s.steps} steps (safety at ${Math.round(safetyT)} tokens, ` +
      `task at ${Math.round(taskMean)}, on average)`;
    return sampled({ name: s.name, seconds: a.seconds + b.seconds, flops: a.flops + b.flops, detail });
  },
};
