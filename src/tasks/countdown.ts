// Countdown in TinyZero's definition: reach the target with + − × ÷ over 3 or 4 given numbers in 1–99,
// each used exactly once ("countdown"), or at most once ("countdown-subset"). Targets are reachable integers
// in 1–100. The verifier parses the expression itself (no eval), computes with exact fractions, and bounds
// length and nesting so any input is checked in bounded time. The search traces live in countdown-search.ts.
import type { Rng } from "../common/rng.js";
import { Rng as SeededRng } from "../common/rng.js";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { fnv1a } from "../common/hash.js";
import {
  behaviourOf,
  calculatorStep,
  faithfulnessOf,
  referee,
  OP_LINE,
  reachable,
  searchTrace,
  type SearchStyle,
} from "./countdown-search.js";
import { problems, type Problem, type Task, type TraceOptions } from "./task.js";

export interface CountdownData {
  nums: number[];
  target: number;
}

type Frac = [number, number]; // numerator, positive denominator, reduced
const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));
function frac(n: number, d: number): Frac | null {
  if (d === 0 || !Number.isSafeInteger(n) || !Number.isSafeInteger(d)) return null;
  const g = gcd(n, d) || 1,
    s = d < 0 ? -1 : 1;
  return [(s * n) / g, (s * d) / g];
}
function apply(op: string, x: Frac, y: Frac): Frac | null {
  switch (op) {
    case "+":
      return frac(x[0] * y[1] + y[0] * x[1], x[1] * y[1]);
    case "-":
      return frac(x[0] * y[1] - y[0] * x[1], x[1] * y[1]);
    case "*":
      return frac(x[0] * y[0], x[1] * y[1]);
    case "/":
      return y[0] === 0 ? null : frac(x[0] * y[1], x[1] * y[0]);
    default:
      return null;
  }
}

const MAX_LEN = 200,
  MAX_DEPTH = 32;

/** Parses and evaluates an expression of ASCII integers, + - * / and parentheses; null if malformed. */
export function evaluate(expr: string): { value: Frac; numbers: number[] } | null {
  if (expr.length > MAX_LEN) return null;
  const toks = expr.replace(/[ \t]+/g, "").match(/[0-9]+|[-+*/()]|./gsu) ?? [];
  if (toks.some((t) => !/^([0-9]+|[-+*/()])$/.test(t))) return null;
  let i = 0;
  const numbers: number[] = [];
  const atom = (depth: number): Frac | null => {
    if (depth > MAX_DEPTH) return null;
    const t = toks[i];
    if (t === "(") {
      i++;
      const v = sum(depth + 1);
      if (toks[i] !== ")") return null;
      i++;
      return v;
    }
    if (t !== undefined && /^[0-9]+$/.test(t) && t.length <= 6) {
      i++;
      numbers.push(Number(t));
      return [Number(t), 1];
    }
    return null;
  };
  const product = (depth: number): Frac | null => {
    let v = atom(depth);
    while (v && (toks[i] === "*" || toks[i] === "/")) {
      const op = toks[i++]!;
      const r = atom(depth);
      v = r && apply(op, v, r);
    }
    return v;
  };
  const sum = (depth: number): Frac | null => {
    let v = product(depth);
    while (v && (toks[i] === "+" || toks[i] === "-")) {
      const op = toks[i++]!;
      const r = product(depth);
      v = r && apply(op, v, r);
    }
    return v;
  };
  const v = sum(0);
  return v && i === toks.length ? { value: v, numbers } : null;
}

/** True when `numbers` is a sub-multiset of `pool` (every one of them when `all`). */
function usesAllowed(numbers: number[], pool: number[], all: boolean): boolean {
  const left = [...pool];
  for (const n of numbers) {
    const j = left.indexOf(n);
    if (j < 0) return false;
    left.splice(j, 1);
  }
  return !all || left.length === 0;
}

const ProblemData = z
  .object({ nums: z.array(z.number().int().min(1).max(9999)).min(2).max(6), target: z.number().int() })
  .strict();

export const TARGET_RANGE = [1, 100] as const;

/** A problem from its numbers and target: the key is the sorted numbers and the target. */
export function countdownProblem(task: string, nums: number[], target: number): Problem<CountdownData> {
  const key = `${[...nums].sort((a, b) => a - b).join(",")}>${target}`;
  return { task, difficulty: nums.length, key, data: { nums, target } };
}

/** Exploratory traces draw a budget of leaves and a shuffle chance from these ranges. */
const BUDGET = [4, 28] as const,
  REFERENCE_BUDGET = 28,
  SHUFFLE = [0.1, 0.8] as const;

/** Steps per drill text. */
const DRILL_LINES = 24;

function makeCountdown(name: string, exactlyOnce: boolean): Task<CountdownData> {
  const rule = exactlyOnce ? "exactly" : "at most";
  const task: Task<CountdownData> = {
    name,
    description: `reach the target (1–100) with + - * / using each of 3–4 numbers (1–99) ${rule} once`,
    difficulties: [3, 4],
    generate(rng: Rng, d: number): Problem<CountdownData> {
      for (;;) {
        const nums = Array.from({ length: d }, () => rng.int(1, 99));
        const targets = [...reachable(nums)].filter((t) => t >= TARGET_RANGE[0] && t <= TARGET_RANGE[1]);
        if (targets.length === 0) continue;
        return countdownProblem(name, nums, rng.pick(targets.sort((a, b) => a - b)));
      }
    },
    prompt: (p) => `${p.data.nums.join(" ")} to ${p.data.target}`,
    solve(p) {
      // the reference: heuristic order seeded by the problem, so it is the same every time; a search that
      // needs more than REFERENCE_BUDGET leaves is shown as its path alone, so references stay short
      const rng = new SeededRng(fnv1a(p.key));
      let s = searchTrace(p.data.nums, p.data.target, { budget: REFERENCE_BUDGET, shuffle: 0, pathOnly: false }, rng);
      if (!s.solved) s = searchTrace(p.data.nums, p.data.target, { budget: 1e9, shuffle: 0, pathOnly: true }, rng);
      if (!s.solved) throw new Error(`internal: countdown ${p.key} has no solution`);
      return { reasoning: s.reasoning, answer: s.answer };
    },
    trace(p, rng, o: TraceOptions) {
      const explore = rng.next() < o.exploratoryShare;
      const style: SearchStyle = explore
        ? { budget: rng.int(...BUDGET), shuffle: SHUFFLE[0] + rng.next() * (SHUFFLE[1] - SHUFFLE[0]), pathOnly: false }
        : { budget: 1e9, shuffle: 0, pathOnly: true };
      const s = searchTrace(p.data.nums, p.data.target, style, rng);
      return { reasoning: s.reasoning, answer: s.answer };
    },
    drill(rng) {
      // the steps of exploratory searches over train problems, shuffled: the arithmetic without the search
      const lines: string[] = [];
      while (lines.length < DRILL_LINES) {
        const p = problems(task, "train", 1, rng.nextU32(), [rng.pick(task.difficulties)])[0]!;
        const style: SearchStyle = { budget: rng.int(...BUDGET), shuffle: SHUFFLE[1], pathOnly: false };
        lines.push(...(searchTrace(p.data.nums, p.data.target, style, rng).reasoning.match(OP_LINE) ?? []));
      }
      return rng.shuffle(lines).slice(0, DRILL_LINES).join(" ");
    },
    behaviour: (reasoning, p) => ({
      ...behaviourOf(reasoning),
      ...(p ? faithfulnessOf(reasoning, p.data.nums, p.data.target) : {}),
    }),
    calculator: (p) => {
      const r = referee(p.data.nums);
      return { write: (text) => calculatorStep(text, p.data.nums, p.data.target), allows: r.allows, legal: r.legal };
    },
    fromData(data, where) {
      const r = ProblemData.safeParse(data);
      if (!r.success)
        throw new FrugalError(
          "TASK",
          `${where}: expected {"nums":[2–6 integers 1–9999],"target":integer}, got ${JSON.stringify(data)?.slice(0, 80)} (${z.prettifyError(r.error).replace(/\n/g, " ")})`,
        );
      return countdownProblem(name, r.data.nums, r.data.target);
    },
    fromPrompt(prompt) {
      const m = /^\s*(\d+(?: +\d+)+) +to +(\d+)\s*$/.exec(prompt);
      const data = m && { nums: m[1]!.split(/ +/).map(Number), target: Number(m[2]) };
      return data && ProblemData.safeParse(data).success ? countdownProblem(name, data.nums, data.target) : null;
    },
    verify(p, answer) {
      const r = evaluate(answer);
      return (
        r !== null &&
        usesAllowed(r.numbers, p.data.nums, exactlyOnce) &&
        r.value[0] === p.data.target &&
        r.value[1] === 1
      );
    },
  };
  return task;
}

export const countdown = makeCountdown("countdown", true);
export const countdownSubset = makeCountdown("countdown-subset", false);
