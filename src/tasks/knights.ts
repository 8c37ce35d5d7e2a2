// Knights and Knaves (as in Logic-RL): knights always tell the truth, knaves always lie. Each person makes
// one statement; puzzles are kept only when exactly one assignment is consistent. Difficulty = people (2–5).
// The trace checks assignments in order and names, for each rejected one, a statement that breaks it.
import type { Rng } from "../common/rng.js";
import type { Problem, Task } from "./task.js";

export type Stmt =
  | { kind: "is"; who: number; knight: boolean }
  | { kind: "and" | "or"; a: number; b: number; knight: boolean }
  | { kind: "same" | "diff"; a: number; b: number };

export interface KnightsData {
  statements: Stmt[];
} // statements[i] is what person i says

const NAMES = ["A", "B", "C", "D", "E"];
const kind = (k: boolean) => (k ? "knight" : "knave");

function truth(s: Stmt, w: boolean[]): boolean {
  switch (s.kind) {
    case "is":
      return w[s.who] === s.knight;
    case "and":
      return w[s.a] === s.knight && w[s.b] === s.knight;
    case "or":
      return w[s.a] === s.knight || w[s.b] === s.knight;
    case "same":
      return w[s.a] === w[s.b];
    case "diff":
      return w[s.a] !== w[s.b];
  }
}

function say(s: Stmt): string {
  switch (s.kind) {
    case "is":
      return `${NAMES[s.who]} is a ${kind(s.knight)}`;
    case "and":
      return `${NAMES[s.a]} and ${NAMES[s.b]} are ${kind(s.knight)}s`;
    case "or":
      return `${NAMES[s.a]} or ${NAMES[s.b]} is a ${kind(s.knight)}`;
    case "same":
      return `${NAMES[s.a]} and ${NAMES[s.b]} are the same`;
    case "diff":
      return `${NAMES[s.a]} and ${NAMES[s.b]} differ`;
  }
}

const worlds = (n: number) =>
  Array.from({ length: 1 << n }, (_, m) => Array.from({ length: n }, (_, i) => ((m >> (n - 1 - i)) & 1) === 0));
const consistent = (st: Stmt[], w: boolean[]) => st.every((s, i) => truth(s, w) === w[i]);

export function solutions(st: Stmt[]): boolean[][] {
  return worlds(st.length).filter((w) => consistent(st, w));
}

function randomStmt(rng: Rng, n: number, self: number): Stmt {
  const other = () => {
    for (;;) {
      const o = rng.int(0, n - 1);
      if (o !== self || n === 1) return o;
    }
  };
  const pair = (): [number, number] => {
    const a = rng.int(0, n - 1);
    for (;;) {
      const b = rng.int(0, n - 1);
      if (b !== a) return [a, b];
    }
  };
  const r = rng.int(0, 4);
  if (r === 0 || n < 2) return { kind: "is", who: other(), knight: rng.next() < 0.5 };
  const [a, b] = pair();
  if (r === 1) return { kind: "and", a, b, knight: rng.next() < 0.5 };
  if (r === 2) return { kind: "or", a, b, knight: rng.next() < 0.5 };
  return { kind: r === 3 ? "same" : "diff", a, b };
}

export function renderAnswer(w: boolean[]): string {
  return w.map((k, i) => `${NAMES[i]} ${kind(k)}`).join(", ");
}

export const knights: Task<KnightsData> = {
  name: "knights",
  description: "knights and knaves: who is a knight (truth-teller) and who a knave (liar)? (difficulty = people)",
  difficulties: [2, 3, 4, 5],
  generate(rng: Rng, n: number): Problem<KnightsData> {
    for (;;) {
      const statements = Array.from({ length: n }, (_, i) => randomStmt(rng, n, i));
      if (solutions(statements).length === 1) {
        return { task: "knights", difficulty: n, key: JSON.stringify(statements), data: { statements } };
      }
    }
  },
  prompt: (p) => p.data.statements.map((s, i) => `${NAMES[i]}: ${say(s)}.`).join(" "),
  solve(p) {
    const st = p.data.statements,
      lines: string[] = [];
    let answer = "";
    for (const w of worlds(st.length)) {
      const broken = st.findIndex((s, i) => truth(s, w) !== w[i]);
      const label = w.map((k) => (k ? "T" : "F")).join("");
      if (broken < 0) {
        lines.push(`${label} ok`);
        answer = renderAnswer(w);
        break;
      }
      lines.push(`${label} no ${NAMES[broken]}`);
    }
    return { reasoning: lines.join(","), answer };
  },
  verify(p, answer) {
    const n = p.data.statements.length;
    const parts = answer.trim().split(/\s*,\s*/);
    if (parts.length !== n || answer.length > 200) return false;
    const w: (boolean | undefined)[] = new Array(n);
    for (const part of parts) {
      const m = /^([A-E]) (knight|knave)$/.exec(part);
      if (!m) return false;
      const i = NAMES.indexOf(m[1]!);
      if (i >= n || w[i] !== undefined) return false;
      w[i] = m[2] === "knight";
    }
    return consistent(p.data.statements, w as boolean[]);
  },
};
