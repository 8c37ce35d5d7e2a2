// Problem files: one JSON object per line in a task's own data shape (countdown: {"nums":[…],"target":N}),
// read for evaluation and written for pinned test sets. Each line is checked by the task's schema and a bad
// line fails naming its file and line number. Nothing here draws or solves problems.
import { readFileSync } from "node:fs";
import { FrugalError } from "../common/errors.js";
import type { Problem, Task } from "./task.js";

/** Reads a JSONL problem file for `task`; blank lines are skipped. */
export function readProblemFile<D>(path: string, task: Task<D>): Problem<D>[] {
  if (!task.fromData)
    throw new FrugalError("TASK", `${task.name} has no problem-file format; only tasks such as countdown read one`);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new FrugalError("INPUT", `cannot read problem file ${path}: ${(e as Error).message}`);
  }
  const out: Problem<D>[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path}:${i + 1}`;
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch {
      throw new FrugalError(
        "INPUT",
        `${where}: expected one JSON object per line, got ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
    out.push(task.fromData!(data, where));
  });
  if (out.length === 0) throw new FrugalError("INPUT", `${path}: no problems in the file`);
  return out;
}

/** The JSONL text of problems (their data only), one per line. */
export function problemFileText<D>(ps: Problem<D>[]): string {
  return ps.map((p) => JSON.stringify(p.data)).join("\n") + "\n";
}
