// Multi-digit addition and multiplication with a scratchpad trace: addition column by column with
// carries (operands zero-padded to equal length in the prompt), multiplication by partial products.
// Difficulty = digits of the larger operand (2–5).
import type { Rng } from "../common/rng.js";
import { parseInteger, type Problem, type Task } from "./task.js";

export interface ArithData {
  a: number;
  b: number;
  op: "+" | "*";
}

function padded(a: number, b: number): string {
  const n = Math.max(String(a).length, String(b).length);
  return `${String(a).padStart(n, "0")}+${String(b).padStart(n, "0")}`;
}

function addTrace(a: number, b: number): string {
  const x = String(a).split("").reverse(),
    y = String(b).split("").reverse();
  const steps: string[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const s = Number(x[i] ?? 0) + Number(y[i] ?? 0) + carry;
    steps.push(`${x[i] ?? 0}+${y[i] ?? 0}+${carry}=${s}`);
    carry = s >= 10 ? 1 : 0;
  }
  if (carry) steps.push(`carry 1`);
  return steps.join(",");
}

function mulTrace(a: number, b: number): string {
  const digits = String(b).split("").reverse();
  const parts = digits.map((d, i) => Number(d) * a * 10 ** i);
  const lines = digits.map((d, i) => `${a}*${d}${"0".repeat(i)}=${parts[i]}`);
  let acc = parts[0]!;
  for (let i = 1; i < parts.length; i++) {
    lines.push(`${acc}+${parts[i]}=${acc + parts[i]!}`);
    acc += parts[i]!;
  }
  return lines.join(",");
}

/** The task over a set of operations: "arithmetic" mixes + and ×, "addition" is + only. */
function arithmeticTask(name: string, ops: ("+" | "*")[], description: string): Task<ArithData> {
  return {
    name,
    description,
    difficulties: [2, 3, 4, 5],
    generate(rng: Rng, d: number): Problem<ArithData> {
      const op = ops[rng.int(0, ops.length - 1)]!;
      const num = (digits: number) => rng.int(10 ** (digits - 1), 10 ** digits - 1);
      const a = num(d),
        b = op === "+" ? num(rng.int(1, d)) : num(rng.int(1, Math.max(1, d - 2)));
      return { task: name, difficulty: d, key: `${a}${op}${b}`, data: { a, b, op } };
    },
    // addition pads the shorter operand with zeros so the columns line up (tiny models cannot count digits)
    prompt: (p) => (p.data.op === "+" ? padded(p.data.a, p.data.b) : `${p.data.a}*${p.data.b}`),
    solve(p) {
      const { a, b, op } = p.data;
      return op === "+"
        ? { reasoning: addTrace(a, b), answer: String(a + b) }
        : { reasoning: mulTrace(a, b), answer: String(a * b) };
    },
    verify(p, answer) {
      const v = parseInteger(answer);
      return v !== null && v === (p.data.op === "+" ? p.data.a + p.data.b : p.data.a * p.data.b);
    },
  };
}

export const arithmetic = arithmeticTask(
  "arithmetic",
  ["+", "*"],
  "multi-digit addition and multiplication with a scratchpad (difficulty = digits)",
);
export const addition = arithmeticTask(
  "addition",
  ["+"],
  "multi-digit addition, column by column with carries (difficulty = digits)",
);
