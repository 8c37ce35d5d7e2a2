// Pieces several stage kinds share: schema fragments (names, model shapes, task lists, sampling settings),
// task data (reference traces, verified samples cached per stage, the GRPO prompt source) and the forecast
// of a supervised or a GRPO stage from its shapes. No stage runs here.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { FrugalError, internal } from "../../common/errors.js";
import { writeFileAtomic } from "../../common/files.js";
import { isMain } from "../../engine/dist.js";
import { Rng } from "../../common/rng.js";
import type { StageForecast } from "../../cost/forecast.js";
import { parseModelConfig, type ModelConfig } from "../../model/config.js";
import { generateFlops, trainFlops } from "../../model/flops.js";
import { decodeBatch, generateShared } from "../../model/sampler.js";
import { getTask, TASK_CHARS } from "../../tasks/index.js";
import { accuracyReward, formatReward, r1Reward } from "../../tasks/rewards.js";
import { calculatorFor, sampleBehaviour } from "../../tasks/eval.js";
import { problems, type Problem, type Task } from "../../tasks/task.js";
import { loadModelDir } from "../../model/load.js";
import {
  completionText,
  endId,
  promptIds,
  renderCompletion,
  sftExample,
  sftExampleOf,
  type SftExample,
} from "../../tokenizer/chat.js";
import { CharTokenizer } from "../../tokenizer/tokenizer.js";
import type { PromptSource } from "../../rl/grpo.js";
import type { StageIO } from "../../train/loop.js";
import { trainSupervised, type SupervisedConfig, type Trainee } from "../../train/supervised.js";
import type { ForecastContext, StageOutcome } from "./kind.js";

export const ModelShape = z
  .object({
    hidden_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    max_position_embeddings: z.number().int().positive().default(256),
    rope_theta: z.number().positive().default(10000),
    tie_word_embeddings: z.boolean().default(false),
  })
  .strict();

export const stageName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, "stage names are lower-case letters, digits and dashes");
/** Where a stage starts: an earlier stage's name, or "hf:DIR", a local Hugging Face model directory. */
export const stageInput = z
  .string()
  .regex(/^([a-z0-9][a-z0-9-]*|hf:.+)$/, "an earlier stage's name, or hf:DIR for a Hugging Face model directory");
export const taskList = z.array(z.string()).min(1);
export const difficultyMap = z.record(z.string(), z.array(z.number().int())).default({});
export const difficultyList = z.array(z.number().int()).optional();

/** How a stage samples from a model to collect verified traces (rejection-sft, distill). */
/** weight of R1's format reward beside accuracy (1 for a correct answer) on a task's prompts */
export const formatWeight = z.number().min(0).default(0.1);

export const Sampling = {
  prompts: z.number().int().positive().default(256),
  samplesPerPrompt: z.number().int().positive().default(4),
  sampleTemperature: z.number().min(0).default(1),
  maxNewTokens: z.number().int().positive().default(128),
  /** sample with the task's calculator: it writes each step's result and admits legal moves only (search tasks) */
  calculator: z.boolean().default(false),
};

export function levels(task: Task, d: Record<string, number[]> | number[] | undefined): readonly number[] {
  if (Array.isArray(d)) return d;
  return d?.[task.name] ?? task.difficulties;
}

/**
 * A trace (the task's reference unless given) as a chat example; pretraining puts the loss on every token,
 * SFT on the completion.
 */
export function traceExample(
  tok: Trainee["tokenizer"],
  task: Task,
  p: Problem,
  wholeText: boolean,
  s: { reasoning: string; answer: string } = task.solve(p),
): SftExample {
  const ex = sftExample(tok, task.prompt(p), renderCompletion(s.reasoning, s.answer));
  return wholeText ? { ids: ex.ids, mask: ex.ids.map(() => 1) } : ex;
}

/** n random train-split problems over the given tasks. */
export function drawProblems(
  taskNames: string[],
  diffs: Record<string, number[]>,
  rng: Rng,
  n: number,
): { task: Task; p: Problem }[] {
  return Array.from({ length: n }, () => {
    const task = getTask(taskNames[rng.int(0, taskNames.length - 1)]!);
    const d = rng.pick(levels(task, diffs));
    return { task, p: problems(task, "train", 1, rng.nextU32(), [d])[0]! };
  });
}

/** A train-split problem source for GRPO with R1's rule reward; search tasks add their behaviour counts. */
export function taskSource(
  task: Task,
  diffs: readonly number[] | undefined,
  calculator = false,
  formatWeight = 0.1,
): PromptSource<Problem> {
  const reward = r1Reward(formatWeight);
  if (calculator && !task.calculator)
    throw new FrugalError("RECIPE", `"calculator": true, but task ${task.name} has none; use countdown or drop it`);
  return {
    calculator: calculator ? (p) => task.calculator?.(p) : undefined,
    draw: (rng, n) => problems(task, "train", n, rng.nextU32(), diffs ?? task.difficulties),
    prompt: (p) => task.prompt(p),
    reward: (text, p) => {
      const r = reward(text, { task, problem: p });
      const b = sampleBehaviour(task, text, r.metrics.accuracy === 1, p);
      return b ? { reward: r.reward, metrics: { ...r.metrics, ...b } } : r;
    },
  };
}

/**
 * A verified completion. forced: indices into its sampled tokens that the model did not pick freely (a tool wrote
 * them, or the referee redrew the model's pick); as in GRPO, supervised training leaves them out of the loss.
 * tokens: the sampled ids, kept with forced so the indices point into exactly what was sampled (re-encoding the
 * text can split it differently, and a template that opened <think> shifts it). Older traces lack both.
 */
export type Trace = { prompt: string; completion: string; forced?: number[]; tokens?: number[] };
export interface SamplingConfig {
  prompts: number;
  samplesPerPrompt: number;
  sampleTemperature: number;
  maxNewTokens: number;
  difficulties?: number[];
  calculator?: boolean;
}

/** Samples completions and keeps those that are correct and well formed (deduplicated). */
export function verifiedTraces(teacher: Trainee, task: Task, cfg: SamplingConfig, seed: number): Trace[] {
  const ps = problems(task, "train", cfg.prompts, seed, cfg.difficulties ?? task.difficulties);
  const tok = teacher.tokenizer;
  const prompts = ps.flatMap((p) => Array.from({ length: cfg.samplesPerPrompt }, () => promptIds(tok, task.prompt(p))));
  const out = generateShared(
    teacher.model,
    prompts,
    prompts.map((_, i) => seed * 7919 + i),
    {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.sampleTemperature,
      topP: 1,
      stopTokens: [endId(tok)],
      decode: (ids) => completionText(tok, ids),
      intervene: cfg.calculator
        ? (i) => calculatorFor(task, tok, ps[Math.floor(i / cfg.samplesPerPrompt)]!)
        : undefined,
    },
  );
  const seen = new Set<string>(),
    kept: Trace[] = [];
  out.forEach((s, i) => {
    const p = ps[Math.floor(i / cfg.samplesPerPrompt)]!,
      ex = { task, problem: p };
    if (s.finishReason !== "stop" || !formatReward(s.text, ex).reward || !accuracyReward(s.text, ex).reward) return;
    const key = task.prompt(p) + "\u0000" + s.text;
    if (!seen.has(key)) {
      seen.add(key);
      const sampled = s.forced?.length ? { forced: s.forced, tokens: s.tokens } : {};
      kept.push({ prompt: task.prompt(p), completion: s.text, ...sampled });
    }
  });
  return kept;
}

/** Verified traces are drawn once per stage and saved, so a resumed stage trains on the same data. */
export function cachedTraces(io: StageIO, make: () => Trace[]): Trace[] {
  const f = join(io.dir, "traces.json");
  if (existsSync(f)) return JSON.parse(readFileSync(f, "utf8")) as Trace[];
  const traces = make();
  if (traces.length === 0)
    throw new FrugalError(
      "DATA",
      `${io.name}: no sampled completion was both correct and well formed; train the source stage longer or sample more (prompts, samplesPerPrompt)`,
    );
  if (isMain()) {
    mkdirSync(io.dir, { recursive: true });
    writeFileAtomic(f, JSON.stringify(traces));
  }
  return traces;
}

/** One random trace as an SFT example: its sampled tokens where it kept them, else its text encoded. */
export function traceOf(traces: Trace[], rng: Rng, t: Pick<Trainee, "tokenizer">): SftExample {
  const x = traces[rng.int(0, traces.length - 1)]!,
    tok = t.tokenizer;
  if (x.tokens?.some((id) => !(id >= 0 && id < tok.vocabSize)))
    throw internal(`a trace's sampled ids reach past the trainee's ${tok.vocabSize}-token vocabulary`);
  const ex = x.tokens ? sftExampleOf(tok, x.prompt, x.tokens) : sftExample(tok, x.prompt, x.completion);
  const start = ex.mask.indexOf(1); // the completion's first token (forced indices count from here)
  for (const i of x.forced ?? []) if (start + i < ex.mask.length - 1) ex.mask[start + i] = 0;
  return ex;
}

/**
 * Trains init() on verified traces of s.task sampled once from the model in sourceDir (rejection-sft, distill):
 * the traces are saved in the stage's directory, so a resumed stage trains on the same data.
 */
export function trainOnVerified(
  s: SamplingConfig & SupervisedConfig & { task: string },
  io: StageIO,
  sourceDir: string,
  init: () => Trainee,
): StageOutcome {
  const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(sourceDir), getTask(s.task), s, io.seed));
  const out = trainSupervised(io, init, traceData(traces, s.batchSize), s, s);
  return { ...out, notes: { traces: traces.length } };
}

/** The forecast of trainOnVerified: training at the sampled traces' mean length, plus sampling from the source. */
export function verifiedForecast(
  s: SamplingConfig & SupervisedConfig & { name: string; task: string },
  config: ModelConfig,
  source: ModelConfig,
  ctx: ForecastContext,
): StageForecast {
  const L = sampledTraceLengths(s.task, s.difficulties),
    T = L.maxPrompt + L.maxCompletion;
  return withSampling(supervisedForecast(s, config, L.prompt + L.completion, ctx), s, source, L, T, ctx);
}

export function traceData(traces: Trace[], batchSize: number) {
  return (_step: number, rng: Rng, t: Trainee): SftExample[] =>
    Array.from({ length: batchSize }, () => traceOf(traces, rng, t));
}

// ---- forecast pieces ----

export const CHAR_VOCAB = CharTokenizer.fromChars(TASK_CHARS).vocabSize;

/** A policy's model config from a recipe shape (llama, this vocabulary). */
export function modelOf(shape: Record<string, unknown>, vocabSize = CHAR_VOCAB): ModelConfig {
  return parseModelConfig({ ...shape, model_type: "llama", vocab_size: vocabSize }, "forecast");
}

export interface TraceLengths {
  prompt: number;
  completion: number;
  maxPrompt: number;
  maxCompletion: number;
  /** the mean position of a completion token (prompt + Σc² / 2Σc): where sampling them decodes, on average */
  decodeAt: number;
}
/** What sampling decodes: completions' mean tokens and the mean position they decode at. */
export type Decoded = Pick<TraceLengths, "completion" | "decodeAt">;

/**
 * Prompt and completion lengths (tokens) of a task's reference traces, or with `exploratoryShare` of the varied
 * traces pretraining draws: means (what a training step costs), and the longest of 64 (what sampling must make
 * room for).
 */
export function traceLengths(
  taskName: string,
  diffs: readonly number[] | undefined,
  exploratoryShare?: number,
): TraceLengths {
  const tok = CharTokenizer.fromChars(TASK_CHARS),
    task = getTask(taskName),
    rng = new Rng(99);
  const ps = problems(task, "train", 64, 99, diffs ?? task.difficulties);
  let p = 0,
    c = 0,
    c2 = 0,
    maxPrompt = 0,
    maxCompletion = 0;
  for (const x of ps) {
    const s = exploratoryShare !== undefined && task.trace ? task.trace(x, rng, { exploratoryShare }) : task.solve(x);
    const pl = promptIds(tok, task.prompt(x)).length,
      cl = sftExample(tok, "", renderCompletion(s.reasoning, s.answer)).ids.length - 2;
    p += pl;
    c += cl;
    c2 += cl * cl;
    maxPrompt = Math.max(maxPrompt, pl);
    maxCompletion = Math.max(maxCompletion, cl);
  }
  const decodeAt = p / ps.length + c2 / (2 * Math.max(1, c));
  return { prompt: p / ps.length, completion: c / ps.length, maxPrompt, maxCompletion, decodeAt };
}

/** The trace lengths of the stage's task at its difficulties (a list, or the first task's entry of a map). */
export function stageTraceLengths(
  taskName: string,
  difficulties: Record<string, number[]> | number[] | undefined,
  exploratoryShare?: number,
) {
  const diffs = Array.isArray(difficulties) ? difficulties : difficulties?.[taskName];
  return traceLengths(taskName, diffs, exploratoryShare);
}

/**
 * The lengths of what a policy samples on the task: for a task with search traces, searches written out in full
 * (the exploratory traces pretraining draws; a searcher writes its own search, longer than the reference's
 * path), else the reference traces. Sampling stages, their training on sampled traces and the evals use these.
 */
export function sampledTraceLengths(
  taskName: string,
  difficulties: Record<string, number[]> | number[] | undefined,
): TraceLengths {
  return stageTraceLengths(taskName, difficulties, getTask(taskName).trace ? 1 : undefined);
}

/**
 * n members × steps × accumulate training steps at (batchSize, T), T the rows' mean length: a batch trains in
 * chunks of rows of like length, each padded only to its own longest (planChunks), so it costs about its rows at
 * their mean length.
 */
export function supervisedForecast(
  s: { name: string; steps: number; accumulate: number; batchSize: number; maxLen?: number },
  config: ModelConfig,
  meanLength: number,
  ctx: ForecastContext,
  members = 1,
): StageForecast {
  const T = Math.max(1, Math.round(Math.min(meanLength, s.maxLen ?? meanLength))); // sequences are cut at maxLen
  const c = ctx.calibration.of(config, s.batchSize, T);
  const seconds = members * s.steps * s.accumulate * c.stepS;
  const flops = members * trainFlops(config, s.steps * s.accumulate * s.batchSize * T, T);
  const detail = `${members > 1 ? `${members} members × ` : ""}${s.steps} steps × ${(c.stepS * s.accumulate).toFixed(3)} s`;
  return { name: s.name, seconds, flops, detail };
}

/** Adds sampling `prompts × samplesPerPrompt` completions of `L.completion` tokens from a teacher. */
export function withSampling(
  f: StageForecast,
  s: { prompts: number; samplesPerPrompt: number },
  teacher: ModelConfig,
  L: Decoded,
  T: number,
  ctx: ForecastContext,
): StageForecast {
  const n = s.prompts * s.samplesPerPrompt,
    genS = (n * L.completion) / ctx.calibration.tokPerS(teacher, { at: L.decodeAt });
  return {
    ...f,
    seconds: f.seconds + genS,
    flops: f.flops + generateFlops(teacher, n * T, T),
    detail: `${f.detail} + ${genS.toFixed(1)} s sampling`,
  };
}

/**
 * A GRPO step: sampling, two no-grad forwards (π_old, π_ref ≈ 1/3 of a train step each) and μ train steps, at
 * updateT: the update trains completions in chunks of like length (planChunks), so it costs about their mean
 * length. Each draw (a refill may take more; priced at the most) starts a rank's rows together, so its batch
 * decodes as many steps as its longest row (up to maxNewTokens, or T) at the decoding step's fixed cost, plus
 * every token at the cost per row, both timed where the completions decode, with the stage's KV cache.
 */
export function grpoForecast(
  s: {
    name: string;
    steps: number;
    promptsPerStep: number;
    groupSize: number;
    ppoEpochs: number;
    maxNewTokens: number;
    microBatch?: number;
    refillRounds?: number;
    kvCacheBf16?: boolean;
  },
  config: ModelConfig,
  L: Decoded,
  lengths: { updateT: number },
  T: number,
  ctx: ForecastContext,
  members?: number,
): StageForecast {
  const B = s.promptsPerStep * s.groupSize,
    ranks = ctx.ranks ?? 1,
    dec = ctx.calibration.decodeStep(config, { members, at: L.decodeAt, kvBf16: s.kvCacheBf16 }),
    u = ctx.calibration.of(config, B, lengths.updateT, s.microBatch, members);
  // one process's worth (the ranks' forecast divides by ranks): every rank's batches run their longest rows
  const batches = ranks * Math.ceil(B / ranks / decodeBatch(config, Math.min(config.max_position_embeddings, T))),
    drawS = B * L.completion * dec.rowS + batches * Math.min(s.maxNewTokens, T) * dec.stepS;
  const genS = (1 + (s.refillRounds ?? 0)) * drawS,
    updateS = u.stepS * (2 / 3 + s.ppoEpochs);
  const flops =
    s.steps *
    (generateFlops(config, B * T, T) * (3 + (s.refillRounds ?? 0)) + trainFlops(config, B * T * s.ppoEpochs, T));
  const detail = `${s.steps} steps × (${genS.toFixed(2)} s sampling + ${updateS.toFixed(2)} s update)`;
  return { name: s.name, seconds: s.steps * (genS + updateS), flops, detail };
}
