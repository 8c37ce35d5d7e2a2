// Forecast of a recipe's time and cost before running it: analytic FLOPs per stage from the recipe (steps,
// batch, sequence lengths measured on the tasks' reference traces) and a short calibration of this engine
// on this machine (a few timed training steps at each stage's shapes, and sampling tokens/s), then a
// projection of the same FLOPs onto other hardware at a stated utilisation.
import { Rng } from "../common/rng.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { generateFlops, trainFlops } from "../model/flops.js";
import { generate } from "../model/sampler.js";
import { biasChannelConfig, mergedConfig } from "../model/surgery.js";
import { initModel } from "../model/transformer.js";
import { labelTokens } from "../safety/guard.js";
import { devBenignPrompts, drawItem } from "../safety/data.js";
import { policyText } from "../safety/reward.js";
import { targetCompletion } from "../safety/source.js";
import { steeringDevPrompts } from "../safety/steer.js";
import { getTask, TASK_CHARS } from "../tasks/index.js";
import { problems } from "../tasks/task.js";
import { renderCompletion, sftExample, promptIds } from "../tokenizer/chat.js";
import { CharTokenizer, TAGS } from "../tokenizer/tokenizer.js";
import { timeTrainSteps } from "../bench/engine.js";
import type { Recipe, StageConfig } from "../pipeline/recipe.js";
import type { PriceTable } from "./prices.js";
import { device as lookup } from "./prices.js";
import { median } from "../common/stats.js";

export interface StageForecast { name: string; seconds: number; flops: number; detail: string }
export interface Forecast {
  stages: StageForecast[]; evalSeconds: number; totalSeconds: number; costUsd: number; device: string; count: number;
  projection?: { device: string; count: number; utilisation: number; seconds: number; costUsd: number };
}

/**
 * Prompt and completion lengths (tokens) of a task's reference traces: means, and the longest of 64,
 * because batches are padded to their longest sequence (the padded length is what a step costs).
 */
function traceLengths(taskName: string, diffs: readonly number[] | undefined): { prompt: number; completion: number; maxPrompt: number; maxCompletion: number } {
  const tok = CharTokenizer.fromChars(TASK_CHARS), task = getTask(taskName);
  const ps = problems(task, "train", 64, 99, diffs ?? task.difficulties);
  let p = 0, c = 0, maxPrompt = 0, maxCompletion = 0;
  for (const x of ps) {
    const s = task.solve(x);
    const pl = promptIds(tok, task.prompt(x)).length, cl = sftExample(tok, "", renderCompletion(s.reasoning, s.answer)).ids.length - 2;
    p += pl; c += cl; maxPrompt = Math.max(maxPrompt, pl); maxCompletion = Math.max(maxCompletion, cl);
  }
  return { prompt: p / ps.length, completion: c / ps.length, maxPrompt, maxCompletion };
}

const CHAR_VOCAB = CharTokenizer.fromChars(TASK_CHARS).vocabSize;

function modelOf(shape: Record<string, unknown>, vocabSize = CHAR_VOCAB): ModelConfig {
  return parseModelConfig({ ...shape, model_type: "llama", vocab_size: vocabSize }, "forecast");
}

/** Seconds per training step at (B, T) and generated tokens per second at batch 32, measured now. */
function calibrate(config: ModelConfig, B: number, T: number, cache: Map<string, number>): { stepS: number; tokPerS: number } {
  const k = `${JSON.stringify(config)}|${B}|${T}`;
  if (!cache.has(k)) cache.set(k, median(timeTrainSteps(config, B, Math.min(config.max_position_embeddings, Math.max(2, Math.round(T))), 3)) / 1000);
  const g = `${JSON.stringify(config)}|gen`;
  if (!cache.has(g)) {
    const model = initModel(config, 1), rng = new Rng(1);
    const prompts = Array.from({ length: 64 }, () => Array.from({ length: 12 }, () => rng.int(9, config.vocab_size - 1)));
    const run = () => generate(model, prompts, prompts.map((_, i) => i), { maxNewTokens: 48, temperature: 1, batch: 32 });
    run(); // warm-up: JIT, first-touch of the KV cache; a cold first call ran 4× slower than steady state
    const t0 = performance.now(), out = run();
    cache.set(g, out.reduce((a, s) => a + s.tokens.length, 0) / ((performance.now() - t0) / 1000));
  }
  return { stepS: cache.get(k)!, tokPerS: cache.get(g)! };
}

/**
 * Characters per token of safety English for a policy of V tokens: 1 for the char policy; for a BPE, measured on
 * 2,000 training draws cut to 140 characters: 2.76 at 1,024 tokens and 3.87 at 4,096 on the mean — log-linear
 * in V between and beyond, within [2, 4.5].
 */
function safetyCharsPerToken(vocabSize: number): number {
  if (vocabSize <= CHAR_VOCAB) return 1;
  return Math.min(4.5, Math.max(2, 2.76 + 0.555 * Math.log2(vocabSize / 1024)));
}

/** The taught completions read this share of the prompts' characters per token (0.83 and 0.84 measured at 1,024 and 4,096 tokens). */
const COMPLETION_CHARS_PER_TOKEN = 0.84;

/**
 * Safety draws as a batch sees them, simulated in characters (training draws: the prompt as the policy reads
 * it + the taught completion + 7 chat and tag tokens): `longest` = the padded length of a batch whose safety
 * part is `n` draws (the longest, averaged over 24 batches), `longestPrompt` the same for prompts alone, and
 * `completion` a completion's mean tokens. Against the speedrun's real tokenizers (4,096 / 1,024 tokens):
 * longest of 16 70.8 / 96.4 (real 67.3 / 96.5), of 4 61.1 / 82.9 (57.0 / 81.5), longest prompt of 32 37.3 /
 * 51.5 (34.9 / 47.6), completion 28.5 / 38.0 (29.6 / 39.6). Before, the forecast summed the longest prompt and
 * the longest completion (133 at 4,096): safety SFT was forecast at 3,560 s (1,721 s measured) and safety
 * GRPO's update at 6.2 s a step (~3.5 s).
 */
export function safetyDrawTokens(n: number, promptChars: number, vocabSize: number): { longest: number; longestPrompt: number; completion: number } {
  const rng = new Rng(7), perTok = safetyCharsPerToken(vocabSize), tags = TAGS.join("").length;
  let sum = 0, sumPrompt = 0, completionTokens = 0;
  for (let b = 0; b < 24; b++) {
    let longest = 0, longestPrompt = 0;
    for (let i = 0; i < n; i++) {
      const item = drawItem(rng, "train"), p = policyText(item.text, promptChars).length / perTok + 2;
      const c = (targetCompletion(item).length - tags) / (perTok * COMPLETION_CHARS_PER_TOKEN) + 5;
      longest = Math.max(longest, p + c), longestPrompt = Math.max(longestPrompt, p);
      completionTokens += c;
    }
    sum += longest, sumPrompt += longestPrompt;
  }
  return { longest: sum / 24, longestPrompt: sumPrompt / 24, completion: completionTokens / (24 * n) };
}

function stageForecast(s: StageConfig, recipe: Recipe, configs: Map<string, ModelConfig>, cache: Map<string, number>): StageForecast {
  if (s.type === "guard") {
    // guard examples are ~40 BPE tokens; its batches pad to the longest, ~64 (measured on the training draw)
    const config = parseModelConfig({ ...s.model, model_type: "llama", vocab_size: s.vocabSize + labelTokens().length }, "forecast");
    configs.set(s.name, config);
    // next-token steps (lmSteps) cost about what a classifier step does at the same (B, T)
    const c = calibrate(config, s.batchSize, 64, cache), steps = (s.lmSteps + s.steps) * s.members;
    return { name: s.name, seconds: steps * c.stepS, flops: trainFlops(config, steps * s.batchSize * 64, 64), detail: `${s.members > 1 ? `${s.members} members × ` : ""}(${s.lmSteps} + ${s.steps}) steps × ${c.stepS.toFixed(3)} s (+ tokenizer training and the held-out report, not forecast)` };
  }
  const taskName = "task" in s ? s.task : s.tasks[0]!;
  const diffs = "difficulties" in s ? (Array.isArray(s.difficulties) ? s.difficulties : s.difficulties?.[taskName]) : undefined;
  const L0 = traceLengths(taskName, diffs);
  const config = s.type === "pretrain" ? modelOf(s.model, s.tokenizer === "char" ? CHAR_VOCAB : s.tokenizer.vocabSize)
    : s.type === "distill" ? modelOf(s.student, configs.get(s.teacher)?.vocab_size)
    : s.type === "safety-sft" && s.vocabSize ? { ...configs.get(s.from)!, vocab_size: s.vocabSize } : configs.get("from" in s ? s.from : "")!;
  // the safety stages' batches: a safetyFrac share of safety draws (SFT examples, or GRPO prompts and their groups)
  const safety = "promptChars" in s ? safetyDrawTokens(Math.max(1, Math.round((s.type === "safety-sft" ? s.batchSize : s.promptsPerStep) * s.safetyFrac)), s.promptChars, config.vocab_size) : null;
  const L = safety && "safetyFrac" in s ? { ...L0, completion: s.safetyFrac * safety.completion + (1 - s.safetyFrac) * L0.completion } : L0;
  // padded batch length: the longest sequence, a task trace or a safety draw
  const T = Math.max(L0.maxPrompt + L0.maxCompletion, safety?.longest ?? 0);
  const calibrates = s.type === "safety-grpo" && s.decisionBenignRate !== undefined;
  // what the stage hands on: safety SFT's members merged side by side; the calibrated decision's bias channel
  configs.set(s.name, s.type === "safety-sft" && s.members > 1 ? mergedConfig(config, s.members) : calibrates ? { ...config, ...biasChannelConfig(config) } : config);
  if (s.type === "grpo" || s.type === "safety-grpo") {
    const B = s.promptsPerStep * s.groupSize, c = calibrate(config, B, safety ? T : L.maxPrompt + Math.min(L.maxCompletion, s.maxNewTokens + 1), cache);
    const genS = (B * L.completion) / c.tokPerS;
    // a GRPO step: sampling, two no-grad forwards (π_old, π_ref ≈ 1/3 of a train step each), μ train steps
    const stepS = genS + c.stepS * (2 / 3 + s.ppoEpochs);
    const flops = s.steps * (generateFlops(config, B * T, T) * 3 + trainFlops(config, B * T * s.ppoEpochs, T));
    const steer = s.type === "safety-grpo" ? steeringForecast(s, recipe, config, configs, safetyDrawTokens(32, s.promptChars, config.vocab_size).longestPrompt, cache) : null;
    return { name: s.name, seconds: s.steps * stepS + (steer?.seconds ?? 0), flops: flops + (steer?.flops ?? 0), detail: `${s.steps} steps × (${genS.toFixed(2)} s sampling + ${(c.stepS * (2 / 3 + s.ppoEpochs)).toFixed(2)} s update)${steer ? ` + ${steer.seconds.toFixed(1)} s ${calibrates ? "calibrating the decision and " : ""}tuning the guard steering` : ""}` };
  }
  const c = calibrate(config, s.batchSize, T, cache);
  const n = s.type === "safety-sft" ? s.members : 1;
  let seconds = n * s.steps * s.accumulate * c.stepS, flops = n * trainFlops(config, s.steps * s.accumulate * s.batchSize * T, T), detail = `${n > 1 ? `${n} members × ` : ""}${s.steps} steps × ${(c.stepS * s.accumulate).toFixed(3)} s`;
  if (s.type === "rejection-sft" || s.type === "distill") {
    const teacher = configs.get(s.type === "distill" ? s.teacher : s.from)!, ct = calibrate(teacher, 32, T, cache);
    const genS = (s.prompts * s.samplesPerPrompt * L.completion) / ct.tokPerS;
    seconds += genS; flops += generateFlops(teacher, s.prompts * s.samplesPerPrompt * T, T);
    detail += ` + ${genS.toFixed(1)} s sampling`;
  }
  return { name: s.name, seconds, flops, detail };
}

/**
 * The safety GRPO stage's last step: the policy's and the guard's no-grad forward passes (≈ 1/3 of a training
 * step at the same shape each) over the benign dev draws the steering is tuned on, and the policy's over the
 * benign dev prompts its decision is calibrated on, in batches of 32.
 */
function steeringForecast(s: Extract<StageConfig, { type: "safety-grpo" }>, recipe: Recipe, policy: ModelConfig, configs: Map<string, ModelConfig>, promptLen: number, cache: Map<string, number>): { seconds: number; flops: number } {
  const g = recipe.stages.find((x) => x.name === s.guard), guard = configs.get(s.guard);
  const n = steeringDevPrompts(recipe.seed).length, batches = Math.ceil(n / 32), members = g?.type === "guard" ? g.members : 1;
  const nCal = s.decisionBenignRate !== undefined ? 3 * devBenignPrompts().length : 0; // calibrating the decision reads its dev prompts three times (β = 0, 1, set)
  let seconds = (batches + Math.ceil(nCal / 32)) * calibrate(policy, 32, promptLen + 1, cache).stepS / 3, flops = generateFlops(policy, (n + nCal) * (promptLen + 1), promptLen + 1);
  if (guard) { seconds += members * batches * calibrate(guard, 32, 64, cache).stepS / 3; flops += members * generateFlops(guard, n * 64, 64); }
  return { seconds, flops };
}

export function forecastRecipe(recipe: Recipe, prices: PriceTable, project?: { device: string; count: number; utilisation: number }): Forecast {
  const configs = new Map<string, ModelConfig>(), cache = new Map<string, number>();
  const stages = recipe.stages.map((s) => stageForecast(s, recipe, configs, cache));
  let evalSeconds = 0;
  if (recipe.eval) {
    const ev = recipe.eval, L = traceLengths(ev.task, ev.difficulties);
    for (const s of recipe.stages) {
      if (s.type === "guard" || (ev.stages && !ev.stages.includes(s.name))) continue;
      const c = calibrate(configs.get(s.name)!, 32, L.prompt + L.completion, cache);
      evalSeconds += (ev.nProblems * (ev.k + 1) * L.completion) / c.tokPerS;
    }
  }
  const here = lookup(prices, recipe.device.kind);
  const totalSeconds = stages.reduce((a, s) => a + s.seconds, 0) + evalSeconds;
  const f: Forecast = { stages, evalSeconds, totalSeconds, costUsd: (totalSeconds / 3600) * here.usdPerHour * recipe.device.count, device: recipe.device.kind, count: recipe.device.count };
  if (project) {
    const d = lookup(prices, project.device), flops = stages.reduce((a, s) => a + s.flops, 0);
    const seconds = flops / (d.peakFlops * project.count * project.utilisation);
    f.projection = { ...project, seconds, costUsd: (seconds / 3600) * d.usdPerHour * project.count };
  }
  return f;
}
