// Rule-based rewards, pure functions (completion, example) → { reward, metrics }. A completion that does
// not parse scores an explicit 0; nothing here throws on any input, and work is bounded by MAX_CHARS.
// Format: exactly <think>…</think><answer>…</answer> (whitespace between allowed), one answer block, no
// tags inside the reasoning, nothing after </answer>. Accuracy is only read from a well-formed answer.
import type { Problem, Task } from "./task.js";

export interface RewardResult {
  reward: number;
  metrics: Record<string, number>;
}
export interface Example {
  problem: Problem;
  task: Task<any>;
}
export type Reward = (completion: string, example: Example) => RewardResult;

export const MAX_CHARS = 20_000;
const TAG = /<\/?(think|answer)>/;

export interface Parsed {
  wellFormed: boolean;
  reasoning: string;
  answer: string | null;
}

/** Splits a completion into reasoning and answer; wellFormed only for the exact format. */
export function parseCompletion(text: string): Parsed {
  if (typeof text !== "string" || text.length > MAX_CHARS) return { wellFormed: false, reasoning: "", answer: null };
  const bad = { wellFormed: false, reasoning: "", answer: null };
  if (!text.startsWith("<think>")) return bad;
  const end = text.indexOf("</think>");
  if (end < 0) return bad;
  const reasoning = text.slice(7, end),
    rest = text.slice(end + 8).trimStart();
  if (TAG.test(reasoning) || !rest.startsWith("<answer>")) return bad;
  const close = rest.indexOf("</answer>");
  if (close < 0) return bad;
  const answer = rest.slice(8, close);
  if (TAG.test(answer) || rest.slice(close + 9).trim() !== "") return bad;
  return { wellFormed: true, reasoning, answer: answer.trim() };
}

export const formatReward: Reward = (completion) => {
  const ok = parseCompletion(completion).wellFormed ? 1 : 0;
  return { reward: ok, metrics: { format: ok } };
};

export const accuracyReward: Reward = (completion, ex) => {
  const p = parseCompletion(completion);
  const ok = p.answer !== null && ex.task.verify(ex.problem, p.answer) ? 1 : 0;
  return { reward: ok, metrics: { accuracy: ok } };
};

/** R1's rule reward: accuracy plus a format term (weight 0.1 by default, as many replications use). */
export function r1Reward(formatWeight = 0.1): Reward {
  return (completion, ex) => {
    const a = accuracyReward(completion, ex),
      f = formatReward(completion, ex);
    return { reward: a.reward + formatWeight * f.reward, metrics: { ...a.metrics, ...f.metrics } };
  };
}

/**
 * DAPO's soft overlong punishment, on completion length in tokens: 0 up to maxLen − cache, then falling
 * linearly to −1 at maxLen (and −1 beyond). Added to another reward by the caller.
 */
export function overlongPenalty(lengthTokens: number, maxLen: number, cache: number): number {
  if (lengthTokens <= maxLen - cache) return 0;
  if (lengthTokens >= maxLen) return -1;
  return (maxLen - cache - lengthTokens) / cache;
}

const REFLECTION = /\b(wait|recheck|verify|re-check|check again)\b/gi;
/** Reflection words ("wait", "recheck", "verify") in a completion, as the R1 paper counts them. */
export function reflectionCount(text: string): number {
  return (text.slice(0, MAX_CHARS).match(REFLECTION) ?? []).length;
}
