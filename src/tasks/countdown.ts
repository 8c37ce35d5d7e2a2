// Countdown (as in TinyZero): reach the target with + − × ÷ over the given numbers, each used at most
// once. The verifier parses the expression itself (no eval), computes with exact fractions, and bounds
// length and nesting so any input is checked in bounded time. Difficulty = how many numbers (3–4).
import type { Rng } from "../common/rng.js";
import type { Problem, Task } from "./task.js";

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

/** Parses and evaluates an expression of integers, + - * / and parentheses; null if malformed. */
export function evaluate(expr: string): { value: Frac; numbers: number[] } | null {
  if (expr.length > MAX_LEN) return null;
  const toks = expr.replace(/\s+/g, "").match(/\d+|[-+*/()]|./g) ?? [];
  if (toks.some((t) => !/^(\d+|[-+*/()])$/.test(t))) return null;
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
    if (t !== undefined && /^\d+$/.test(t) && t.length <= 6) {
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

/** True when `numbers` is a sub-multiset of `pool`. */
function usesAllowed(numbers: number[], pool: number[]): boolean {
  const left = [...pool];
  for (const n of numbers) {
    const j = left.indexOf(n);
    if (j < 0) return false;
    left.splice(j, 1);
  }
  return true;
}

interface Node {
  v: number;
  expr: string;
  steps: string[];
}
/** Depth-first search for an expression; returns its steps, in the order a person would write them. */
export function solveCountdown(nums: number[], target: number): Node | null {
  const search = (items: Node[]): Node | null => {
    for (const it of items) if (it.v === target) return it;
    for (let a = 0; a < items.length; a++)
      for (let b = 0; b < items.length; b++) {
        if (a === b) continue;
        const x = items[a]!,
          y = items[b]!,
          rest = items.filter((_, k) => k !== a && k !== b);
        const cands: [string, number][] = [
          ["+", x.v + y.v],
          ["-", x.v - y.v],
          ["*", x.v * y.v],
        ];
        if (y.v !== 0 && x.v % y.v === 0) cands.push(["/", x.v / y.v]);
        for (const [op, v] of cands) {
          if (v < 0 || (op === "+" && a > b) || (op === "*" && a > b)) continue;
          const wrap = (n: Node) => (n.steps.length ? `(${n.expr})` : n.expr);
          const node = {
            v,
            expr: `${wrap(x)}${op}${wrap(y)}`,
            steps: [...x.steps, ...y.steps, `${x.v}${op}${y.v}=${v}`],
          };
          const r = search([...rest, node]);
          if (r) return r;
        }
      }
    return null;
  };
  return search(nums.map((n) => ({ v: n, expr: String(n), steps: [] })));
}

export const countdown: Task<CountdownData> = {
  name: "countdown",
  description: "reach the target with + - * / using each given number at most once (difficulty = count of numbers)",
  difficulties: [3, 4],
  generate(rng: Rng, d: number): Problem<CountdownData> {
    for (;;) {
      const nums = Array.from({ length: d }, () => rng.int(1, 30));
      // the target is the value of a random expression over the numbers, so a solution exists
      let acc = nums[0]!;
      for (let k = 1; k < d; k++) {
        const n = nums[k]!,
          op = rng.int(0, 2);
        acc = op === 0 ? acc + n : op === 1 ? (acc > n ? acc - n : acc + n) : acc * n <= 500 ? acc * n : acc + n;
      }
      if (acc < 1 || acc > 500 || nums.includes(acc)) continue;
      return {
        task: "countdown",
        difficulty: d,
        key: `${[...nums].sort((a, b) => a - b).join(",")}>${acc}`,
        data: { nums, target: acc },
      };
    }
  },
  prompt: (p) => `${p.data.nums.join(" ")} to ${p.data.target}`,
  solve(p) {
    const s = solveCountdown(p.data.nums, p.data.target);
    if (!s) throw new Error(`internal: countdown ${p.key} has no solution`);
    return { reasoning: s.steps.join(","), answer: s.expr };
  },
  verify(p, answer) {
    const r = evaluate(answer);
    return r !== null && usesAllowed(r.numbers, p.data.nums) && r.value[0] === p.data.target && r.value[1] === 1;
  },
};
