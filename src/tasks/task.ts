// The task interface: a seeded generator with difficulty levels, disjoint train/test splits decided by a
// hash of each problem's canonical key, a prompt renderer, a reference solution with a step-by-step
// trace, and an exact verifier of a final answer string. Tasks know nothing of models or tokens.
import { FrugalError } from "../common/errors.js";
import { fnv1a } from "../common/hash.js";
import { Rng } from "../common/rng.js";

export type Split = "train" | "test";

export interface Problem<D = unknown> {
  task: string;
  difficulty: number;
  /** canonical identity: two problems with the same key are the same problem */
  key: string;
  data: D;
}

export interface TraceOptions {
  /** share of traces that show the search with its dead ends; the rest show only the path to the answer */
  exploratoryShare: number;
}

export interface Task<D = unknown> {
  name: string;
  description: string;
  difficulties: readonly number[];
  /** One random problem (of either split; splitting is done by problems()). */
  generate(rng: Rng, difficulty: number): Problem<D>;
  prompt(p: Problem<D>): string;
  /** Reference reasoning trace and final answer. */
  solve(p: Problem<D>): { reasoning: string; answer: string };
  /** A varied trace for pretraining a searcher (search tasks only); solve() is the fixed reference. */
  trace?(p: Problem<D>, rng: Rng, o: TraceOptions): { reasoning: string; answer: string };
  /** Practice text of the steps a trace writes (search tasks: its arithmetic), drawn from train problems. */
  drill?(rng: Rng): string;
  /**
   * Counts of reasoning behaviours (candidates tried, backtracks, checks) in any reasoning text; given the
   * problem, also how true the text is to its own steps (shares of miscalculated steps, stray states, false "yes").
   */
  behaviour?(reasoning: string, p?: Problem<D>): Record<string, number>;
  /** A tool for sampling (search tasks): the model chooses the steps; the tool computes them. See Calculator. */
  calculator?(p: Problem<D>): Calculator;
  /** A problem from one line of a problem file (its data shape); throws a TASK error naming `where`. */
  fromData?(data: unknown, where: string): Problem<D>;
  /** The problem a prompt of this task states (the inverse of prompt), or null when it states none. */
  fromPrompt?(prompt: string): Problem<D> | null;
  /** Exact check of a final answer string (already extracted from <answer>…</answer>). Never throws. */
  verify(p: Problem<D>, answer: string): boolean;
}

/** A search task's tool for one problem. Both read the completion written so far (from "<think>" on). */
export interface Calculator {
  /** the text an exact calculator writes next (a step's result and the state it leaves), or null */
  write(text: string): string | null;
  /** whether the model may write `next` after `text`: only legal moves (absent: anything) */
  allows?(text: string, next: string): boolean;
  /** allows for every token of a vocabulary at once (1 where allowed): the same verdicts, faster */
  legal?(text: string, vocab: readonly string[]): Uint8Array;
}

/** FNV-1a over the key; ~10% of keys are held out for testing. */
export function splitOf(key: string): Split {
  return fnv1a(key) % 10 === 0 ? "test" : "train";
}

/** n problems of one split, seeded; difficulty cycles through the given levels. */
export function problems<D>(
  task: Task<D>,
  split: Split,
  n: number,
  seed: number,
  difficulties: readonly number[] = task.difficulties,
): Problem<D>[] {
  for (const d of difficulties) {
    if (!task.difficulties.includes(d))
      throw new FrugalError("TASK", `${task.name}: difficulty ${d} is not one of ${task.difficulties.join(", ")}`);
  }
  const rng = new Rng(seed ^ (split === "test" ? 0x5eed : 0));
  const out: Problem<D>[] = [];
  for (let i = 0, tries = 0; out.length < n; tries++) {
    if (tries > n * 200 + 1000)
      throw new FrugalError(
        "TASK",
        `${task.name}: could not draw ${n} ${split} problems at difficulties ${difficulties.join(", ")} (too few distinct problems?)`,
      );
    const p = task.generate(rng, difficulties[i % difficulties.length]!);
    if (splitOf(p.key) === split) {
      out.push(p);
      i++;
    }
  }
  return out;
}

/** Strict ASCII integer (no unicode digits, no spaces, no leading +); null when it is not one. */
export function parseInteger(s: string): number | null {
  const t = s.trim();
  if (!/^-?[0-9]{1,15}$/.test(t)) return null;
  return Number(t);
}
