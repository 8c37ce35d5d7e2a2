// The evaluation harness, R1 protocol: k samples per held-out problem at T=0.6, top-p 0.95, pass@1 =
// mean accuracy over all samples; plus greedy accuracy, format rate, mean completion length (tokens),
// truncation rate, reflection words per completion, search behaviour (search tasks), pass@j for j up to k
// (Chen et al.'s unbiased estimator: does a model solve more problems, or the same ones more often?) and a
// per-difficulty breakdown. Problems come from the task's test split or from a problem file.
import { internal } from "../common/errors.js";
import type { Model } from "../model/transformer.js";
import { generateShared, type Intervene, type Sample } from "../model/sampler.js";
import { completionText, endId, promptIds } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { accuracyReward, formatReward, parseCompletion, reflectionCount } from "./rewards.js";
import { problems, type Calculator, type Problem, type Task } from "./task.js";

export interface EvalOptions {
  nProblems: number;
  k: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
  difficulties?: readonly number[];
  batch?: number;
  greedy?: boolean;
  /** evaluate on these problems (a problem file) instead of drawing nProblems from the test split */
  problems?: Problem[];
  /** sample with the task's calculator in the loop (search tasks; see Task.calculator) */
  calculator?: boolean;
  /** keep the KV cache in bfloat16 (half the bytes each decode step reads; the samples differ from float32's) */
  kvBf16?: boolean;
  /** told how many completions are done of all the eval samples (k per problem, + 1 greedy) */
  progress?: (done: number, total: number) => void;
}
export const defaultEval: EvalOptions = {
  nProblems: 100,
  k: 4,
  temperature: 0.6,
  topP: 0.95,
  maxNewTokens: 200,
  seed: 1234,
  greedy: true,
};

export interface EvalReport {
  task: string;
  nProblems: number;
  k: number;
  pass1: number;
  /** pass@j for j = 2, 4, 8, … and k (see passAt) */
  passAt: Record<string, number>;
  greedyAccuracy: number | null;
  formatRate: number;
  meanLength: number;
  truncationRate: number;
  reflectionsPerCompletion: number;
  /** with the calculator: the model's picks its referee refused (an illegal move begun), per completion */
  refusedPerCompletion?: number;
  /** search tasks: behaviour counts per completion, and the share of solved ones whose reasoning backtracks */
  behaviour: Record<string, number> | null;
  /** per difficulty: pass@1 and pass@j, greedy accuracy, the mean length (tokens) and truncated share of its samples */
  byDifficulty: Record<
    string,
    {
      n: number;
      pass1: number;
      passAt: Record<string, number>;
      greedyAccuracy: number | null;
      meanLength: number;
      truncationRate: number;
    }
  >;
  examples: { prompt: string; completion: string; correct: boolean }[];
  generatedTokens: number;
  wallMs: number;
}

/**
 * The task's calculator for one problem as a sampler tool (see toolOf). Undefined when the task has none.
 */
export function calculatorFor(task: Task, tok: Tokenizer, p: Problem): Intervene | undefined {
  const calc = task.calculator?.(p);
  return calc && toolOf(tok, calc);
}

/**
 * A text-level tool as a sampler tool: write looks after a token ending in "=" or ">" only. Both read the
 * completion decoded once per token (appending each token's text: ASCII tool languages).
 */
export function toolOf(tok: Tokenizer, calc: Calculator): Intervene {
  let decoded = 0,
    text = "";
  const textOf = (ids: readonly number[]) => {
    if (ids.length < decoded) [decoded, text] = [0, ""];
    if (decoded === 0) text = completionText(tok, []);
    for (; decoded < ids.length; decoded++) text += tok.decode([ids[decoded]!]);
    return text;
  };
  const allows = calc.allows;
  return {
    write(ids) {
      const last = tok.decode(ids.slice(-1));
      if (!last.endsWith("=") && !last.endsWith(">")) return null;
      const out = calc.write(textOf(ids));
      return out === null ? null : tok.encode(out);
    },
    allows: allows && ((ids, next) => allows(textOf(ids), tok.decode([next]))),
  };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function sampleAll(
  model: Model,
  tok: Tokenizer,
  ps: Problem[],
  task: Task,
  k: number,
  o: EvalOptions & { onSampled?: (n: number) => void },
  temperature: number,
): Sample[] {
  const prompts = ps.flatMap((p) => Array.from({ length: k }, () => promptIds(tok, task.prompt(p))));
  // never ask for more tokens than the context has room for after the longest prompt
  const room = model.config.max_position_embeddings - Math.max(...prompts.map((p) => p.length));
  return generateShared(
    model,
    prompts,
    prompts.map((_, i) => o.seed + i),
    {
      maxNewTokens: Math.max(1, Math.min(o.maxNewTokens, room)),
      temperature,
      topP: temperature > 0 ? o.topP : 1,
      batch: o.batch,
      kvBf16: o.kvBf16,
      stopTokens: [endId(tok)],
      decode: (ids) => completionText(tok, ids),
      onFinished: (n) => o.onSampled?.(n),
      intervene: o.calculator ? (i) => calculatorFor(task, tok, ps[Math.floor(i / k)]!) : undefined,
    },
  );
}

/**
 * One completion's behaviour counts (search tasks; null for others), with solvedWithBacktrack only when it is
 * correct: averaged over the samples that carry it, that is the share of solved ones that backtrack.
 */
export function sampleBehaviour(
  task: Task,
  text: string,
  correct: boolean,
  p?: Problem,
): Record<string, number> | null {
  if (!task.behaviour) return null;
  const b = task.behaviour(parseCompletion(text).reasoning || text, p);
  if (correct) b.solvedWithBacktrack = (b.backtracks ?? 0) > 0 ? 1 : 0;
  return b;
}

/** Mean behaviour counts over completions, each over the completions that carry it (0 when none does). */
export function behaviourSummary(
  task: Task,
  samples: Sample[],
  acc: number[],
  problemOf: (i: number) => Problem | undefined = () => undefined,
): Record<string, number> | null {
  if (!task.behaviour) return null;
  const bs = samples.map((s, i) => sampleBehaviour(task, s.text, acc[i] === 1, problemOf(i))!);
  const out: Record<string, number> = {};
  for (const k of new Set(bs.flatMap((b) => Object.keys(b)))) out[k] = mean(bs.filter((b) => k in b).map((b) => b[k]!));
  out.solvedWithBacktrack ??= 0; // no solved completion
  return out;
}

type Sampled = { tokens: readonly number[]; finishReason: string };

/**
 * The chance that at least one of j samples drawn without replacement from n, c of them correct, is correct:
 * 1 − C(n−c, j) / C(n, j) (Chen et al. 2021), as a product so no binomial overflows.
 */
export function passAtJ(n: number, c: number, j: number): number {
  if (!(j >= 1 && j <= n && c >= 0 && c <= n))
    throw internal(`passAtJ: need 1 ≤ j ≤ n and 0 ≤ c ≤ n, got n ${n} c ${c} j ${j}`);
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - j / i;
  return 1 - miss;
}

/**
 * pass@j averaged over problems, for j = 2, 4, 8, … below k and k itself: acc[i·k … i·k+k) are problem i's
 * samples (1 correct). Empty when k is 1.
 */
export function passAt(acc: readonly number[], k: number, problems: readonly number[]): Record<string, number> {
  const js: number[] = [];
  for (let j = 2; j < k; j *= 2) js.push(j);
  if (k >= 2) js.push(k);
  const correct = problems.map((i) => acc.slice(i * k, (i + 1) * k).reduce((a, b) => a + b, 0));
  return Object.fromEntries(js.map((j) => [String(j), mean(correct.map((c) => passAtJ(k, c, j)))]));
}

/** The report's per-difficulty rows: samples[i·k … i·k+k) and acc alike belong to problem i. */
export function difficultyRows(
  ps: readonly { difficulty: number }[],
  samples: readonly Sampled[],
  acc: readonly number[],
  gAcc: readonly number[] | null,
  k: number,
): EvalReport["byDifficulty"] {
  const rows: EvalReport["byDifficulty"] = {};
  for (const d of new Set(ps.map((p) => p.difficulty))) {
    const idx = ps.map((p, i) => (p.difficulty === d ? i : -1)).filter((i) => i >= 0),
      mine = idx.flatMap((i) => samples.slice(i * k, (i + 1) * k));
    rows[String(d)] = {
      n: idx.length,
      pass1: mean(idx.flatMap((i) => acc.slice(i * k, (i + 1) * k))),
      passAt: passAt(acc, k, idx),
      greedyAccuracy: gAcc ? mean(idx.map((i) => gAcc[i]!)) : null,
      meanLength: mean(mine.map((s) => s.tokens.length)),
      truncationRate: mean(mine.map((s) => (s.finishReason === "length" ? 1 : 0))),
    };
  }
  return rows;
}

export function evaluate(model: Model, tok: Tokenizer, task: Task, opts: Partial<EvalOptions> = {}): EvalReport {
  const o = { ...defaultEval, ...opts },
    t0 = performance.now();
  const ps = o.problems ?? problems(task, "test", o.nProblems, o.seed, o.difficulties ?? task.difficulties);
  const total = ps.length * (o.k + (o.greedy ? 1 : 0)),
    report = (offset: number) => (n: number) => o.progress?.(offset + n, total);
  const samples = sampleAll(model, tok, ps, task, o.k, { ...o, onSampled: report(0) }, o.temperature);
  const acc = samples.map((s, i) => accuracyReward(s.text, { task, problem: ps[Math.floor(i / o.k)]! }).reward);
  const greedy = o.greedy ? sampleAll(model, tok, ps, task, 1, { ...o, onSampled: report(samples.length) }, 0) : null;
  const gAcc = greedy?.map((s, i) => accuracyReward(s.text, { task, problem: ps[i]! }).reward) ?? null;
  const byDifficulty = difficultyRows(ps, samples, acc, gAcc, o.k);
  return {
    task: task.name,
    nProblems: ps.length,
    k: o.k,
    pass1: mean(acc),
    passAt: passAt(
      acc,
      o.k,
      ps.map((_, i) => i),
    ),
    greedyAccuracy: gAcc ? mean(gAcc) : null,
    formatRate: mean(samples.map((s) => formatReward(s.text, { task, problem: ps[0]! }).reward)),
    meanLength: mean(samples.map((s) => s.tokens.length)),
    truncationRate: mean(samples.map((s) => (s.finishReason === "length" ? 1 : 0))),
    reflectionsPerCompletion: mean(samples.map((s) => reflectionCount(s.text))),
    ...(o.calculator ? { refusedPerCompletion: mean(samples.map((s) => s.refused?.length ?? 0)) } : {}),
    behaviour: behaviourSummary(task, samples, acc, (i) => ps[Math.floor(i / o.k)]),
    byDifficulty,
    examples: samples
      .slice(0, 8)
      .map((s, i) => ({ prompt: task.prompt(ps[Math.floor(i / o.k)]!), completion: s.text, correct: acc[i] === 1 })),
    generatedTokens:
      samples.reduce((a, s) => a + s.tokens.length, 0) + (greedy?.reduce((a, s) => a + s.tokens.length, 0) ?? 0),
    wallMs: performance.now() - t0,
  };
}
