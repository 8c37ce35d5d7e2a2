// What the two safety stages share: the mix of safety prompts with the task (schema fields), and the
// forecast's view of safety draws — their lengths in tokens for a policy of a given vocabulary, simulated in
// characters — and of the steered decision's tuning. No training here.
import { z } from "zod";
import { Rng } from "../../common/rng.js";
import type { StageForecast } from "../../cost/forecast.js";
import type { ModelConfig } from "../../model/config.js";
import { generateFlops } from "../../model/flops.js";
import { devBenignPrompts, drawItem } from "../../safety/corpus.js";
import { policyText } from "../../safety/reward.js";
import { targetCompletion } from "../../safety/source.js";
import { steeringDevPrompts } from "../../safety/steer.js";
import { TAGS } from "../../tokenizer/tokenizer.js";
import type { ForecastContext } from "./kind.js";
import { CHAR_VOCAB, difficultyList, stageName, stageTraceLengths, type TraceLengths } from "./shared.js";

export const SafetyMix = {
  from: stageName,
  task: z.string(),
  difficulties: difficultyList,
  /** share of examples / prompts that are safety prompts (the rest are the task, to keep capability) */
  safetyFrac: z.number().min(0).max(1).default(0.5),
  /** safety prompts are cut to this many characters (the policy's context holds the prompt and its reply) */
  promptChars: z.number().int().positive().default(160),
};

/**
 * Characters per token of safety English for a policy of V tokens: 1 for the char policy; for a BPE, measured on
 * 2,000 training draws cut to 140 characters: 2.76 at 1,024 tokens and 3.87 at 4,096 on the mean — log-linear
 * in V between and beyond, within [2, 4.5].
 */
function safetyCharsPerToken(vocabSize: number): number {
  if (vocabSize <= CHAR_VOCAB) return 1;
  return Math.min(4.5, Math.max(2, 2.76 + 0.555 * Math.log2(vocabSize / 1024)));
}

/** The taught completions read this share of the prompts' characters per token (0.83 / 0.84 at 1,024 / 4,096). */
const COMPLETION_CHARS_PER_TOKEN = 0.84;

/**
 * Safety draws as a batch sees them, simulated in characters (training draws: the prompt as the policy reads
 * it + the taught completion + 7 chat and tag tokens): `longest` = the padded length of a batch whose safety
 * part is `n` draws (the longest, averaged over 24 batches), `longestPrompt` the same for prompts alone, and
 * `completion` a completion's mean tokens. Checked against a real tokenizer in safety-mix.test.ts.
 */
export function safetyDrawTokens(
  n: number,
  promptChars: number,
  vocabSize: number,
): { longest: number; longestPrompt: number; completion: number; mean: number } {
  const rng = new Rng(7),
    perTok = safetyCharsPerToken(vocabSize),
    tags = TAGS.join("").length;
  let sum = 0,
    sumPrompt = 0,
    completionTokens = 0,
    total = 0;
  for (let b = 0; b < 24; b++) {
    let longest = 0,
      longestPrompt = 0;
    for (let i = 0; i < n; i++) {
      const item = drawItem(rng, "train"),
        p = policyText(item.text, promptChars).length / perTok + 2;
      const c = (targetCompletion(item).length - tags) / (perTok * COMPLETION_CHARS_PER_TOKEN) + 5;
      longest = Math.max(longest, p + c);
      longestPrompt = Math.max(longestPrompt, p);
      completionTokens += c;
      total += p + c;
    }
    sum += longest;
    sumPrompt += longestPrompt;
  }
  return {
    longest: sum / 24,
    longestPrompt: sumPrompt / 24,
    completion: completionTokens / (24 * n),
    mean: total / (24 * n),
  };
}

/**
 * A safety stage's shapes: the task's traces, the safety draws of one batch, the padded length T of a batch
 * (its longest sequence) and the mean length of a row.
 */
export function mixShapes(
  s: { task: string; difficulties?: number[]; safetyFrac: number; promptChars: number },
  draws: number,
  vocabSize: number,
): { L: TraceLengths; T: number; meanT: number } {
  const L0 = stageTraceLengths(s.task, s.difficulties);
  const safety = safetyDrawTokens(Math.max(1, Math.round(draws * s.safetyFrac)), s.promptChars, vocabSize);
  // decoding: the safety completions follow their prompts (mean − completion / 2 on average), weighted by tokens
  const safetyTokens = s.safetyFrac * safety.completion,
    taskTokens = (1 - s.safetyFrac) * L0.completion,
    decodeAt =
      (safetyTokens * (safety.mean - safety.completion / 2) + taskTokens * L0.decodeAt) /
      Math.max(1e-9, safetyTokens + taskTokens);
  const L = { ...L0, completion: safetyTokens + taskTokens, decodeAt };
  // padded batch length: the longest sequence, a task trace or a safety draw
  const T = Math.max(L0.maxPrompt + L0.maxCompletion, safety.longest),
    meanT = s.safetyFrac * safety.mean + (1 - s.safetyFrac) * (L0.prompt + L0.completion);
  return { L, T, meanT };
}

/**
 * The safety GRPO stage's last step: the policy's and the guard's no-grad forward passes (≈ 1/3 of a training
 * step at the same shape each) over the benign dev draws the steering is tuned on, and the policy's over the
 * benign dev prompts its decision is calibrated on (three passes: β = 0, 1, set), in batches of 32.
 */
export function steeringForecast(
  s: { guard: string; decisionBenignRate?: number },
  policy: ModelConfig,
  promptLen: number,
  ctx: ForecastContext,
): Pick<StageForecast, "seconds" | "flops"> {
  const g = ctx.stages.find((x) => x.name === s.guard),
    guard = ctx.configs.get(s.guard);
  const n = steeringDevPrompts(ctx.seed).length,
    batches = Math.ceil(n / 32),
    members = g?.type === "guard" ? (g.members ?? 1) : 1;
  const nCal = s.decisionBenignRate !== undefined ? 3 * devBenignPrompts().length : 0;
  const stepS = ctx.calibration.of(policy, 32, promptLen + 1).stepS;
  let seconds = ((batches + Math.ceil(nCal / 32)) * stepS) / 3,
    flops = generateFlops(policy, (n + nCal) * (promptLen + 1), promptLen + 1);
  if (guard) {
    seconds += (members * batches * ctx.calibration.of(guard, 32, 64).stepS) / 3;
    flops += members * generateFlops(guard, n * 64, 64);
  }
  return { seconds, flops };
}
