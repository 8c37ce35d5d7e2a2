// `frugal eval` (R1-protocol evaluation of a checkpoint on a task's held-out split) and
// `frugal tasks sample` (what the model is asked, with reference traces).
import type { Command } from "commander";
import { isMain } from "../engine/dist.js";
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { loadModelDir } from "../model/load.js";
import { renderCompletion } from "../tokenizer/chat.js";
import { getTask } from "../tasks/index.js";
import { evaluate, type EvalReport } from "../tasks/eval.js";
import { problems, type Split } from "../tasks/task.js";
import { problemFileText, readProblemFile } from "../tasks/problem-file.js";
import { writeFileAtomic } from "../common/files.js";
import { progress } from "../common/progress.js";
import { positiveInt } from "./bench.js";
import { needCalculator, num } from "./sample.js";

export function printReport(r: EvalReport): void {
  const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
  console.log(`task ${r.task}: ${r.nProblems} held-out problems × ${r.k} samples (${(r.wallMs / 1000).toFixed(1)} s)`);
  console.log(
    `  pass@1 ${pct(r.pass1)}   greedy ${pct(r.greedyAccuracy)}   format ${pct(r.formatRate)}   mean length ${r.meanLength.toFixed(1)} tokens   truncated ${pct(r.truncationRate)}   reflection words ${r.reflectionsPerCompletion.toFixed(2)}/completion`,
  );
  const at = (p: Record<string, number>) =>
    Object.entries(p)
      .map(([j, x]) => `pass@${j} ${pct(x)}`)
      .join("  ");
  if (Object.keys(r.passAt).length) console.log(`  ${at(r.passAt)} (problems solved by at least one of j samples)`);
  if (r.refusedPerCompletion !== undefined)
    console.log(`  the calculator's referee refused ${r.refusedPerCompletion.toFixed(2)} picks per completion`);
  if (r.behaviour) {
    const b = r.behaviour;
    console.log(
      `  search: ${b.candidates!.toFixed(1)} candidates, ${b.backtracks!.toFixed(2)} backtracks, ${b.verifications!.toFixed(2)} checks per completion; ${pct(b.solvedWithBacktrack!)} of solved ones backtrack`,
    );
    if (b.miscalculated !== undefined)
      console.log(
        `  true to its steps: ${pct(b.miscalculated)} of steps miscalculated, ${pct(b.strayStates ?? null)} of states stray, ${pct(b.falseYes ?? null)} of "yes" false`,
      );
  }
  for (const [d, b] of Object.entries(r.byDifficulty))
    console.log(
      `  difficulty ${d}: n=${b.n}  pass@1 ${pct(b.pass1)}  ${at(b.passAt)}  greedy ${pct(b.greedyAccuracy)}  mean length ${b.meanLength.toFixed(1)}  truncated ${pct(b.truncationRate)}`,
    );
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("evaluate a checkpoint on a task's held-out problems (pass@1 over k samples, R1 protocol)")
    .requiredOption("--model <dir>", "checkpoint directory")
    .requiredOption("--task <name>", "task: addition, arithmetic, countdown, countdown-subset or knights")
    .option("--problems <file>", 'JSONL problem file (countdown: {"nums":[…],"target":N} per line)')
    .option("--n-problems <n>", "held-out problems (default 100; with --problems, the whole file)")
    .option("--k <k>", "samples per problem", "4")
    .option("--temperature <t>", "sampling temperature", "0.6")
    .option("--top-p <p>", "nucleus mass", "0.95")
    .option("--max-tokens <n>", "max new tokens per completion", "200")
    .option("--difficulty <list>", "comma-separated difficulty levels (default: all)")
    .option("--seed <s>", "seed", "1234")
    .option(
      "--calculator",
      "sample with the task's calculator: it writes each step's result, the model may write legal moves only (countdown)",
    )
    .option("--kv-bf16", "keep the KV cache in bfloat16: faster on long completions, the samples differ slightly")
    .option("--json", "print one JSON object")
    .action((o: Record<string, string | boolean>) => {
      const task = getTask(String(o.task));
      if (o.calculator) needCalculator(task);
      const fromFile = o.problems ? readProblemFile(String(o.problems), task) : undefined;
      const n = o.nProblems ? positiveInt("--n-problems", String(o.nProblems)) : (fromFile?.length ?? 100);
      const ck = loadModelDir(String(o.model));
      const bar = progress("eval", { stream: process.stderr, unit: "sample", quiet: !isMain() });
      const r = evaluate(ck.model, ck.tokenizer, task, {
        problems: fromFile?.slice(0, n),
        progress: (done, total) => bar.update(done, total, ""),
        nProblems: n,
        k: positiveInt("--k", String(o.k)),
        temperature: num("--temperature", String(o.temperature), 0, 10),
        topP: num("--top-p", String(o.topP), 1e-9, 1),
        maxNewTokens: positiveInt("--max-tokens", String(o.maxTokens)),
        seed: num("--seed", String(o.seed), 0, 2 ** 31),
        difficulties: o.difficulty ? String(o.difficulty).split(",").map(Number) : undefined,
        calculator: !!o.calculator,
        kvBf16: !!o.kvBf16,
      });
      bar.stop();
      if (!isMain()) return; // under mpirun the ranks split the samples; rank 0 reports
      if (o.json) console.log(JSON.stringify(r));
      else printReport(r);
    });

  const tasks = program.command("tasks").description("inspect the reasoning tasks; write problem files");
  tasks
    .command("write")
    .description("write n problems of one split as a JSONL problem file (for eval --problems)")
    .requiredOption("--task <name>", "task name (one with a problem-file format, e.g. countdown)")
    .requiredOption("--out <file>", "where to write")
    .option("--n <n>", "how many (difficulties take turns)", "1000")
    .option("--split <split>", "train or test", "test")
    .option("--seed <s>", "seed", "1")
    .action((o: Record<string, string>) => {
      const task = getTask(o.task!);
      if (!task.fromData) throw new FrugalError("TASK", `${task.name} has no problem-file format; try countdown`);
      const ps = problems(task, splitArg(o.split!), positiveInt("--n", o.n!), num("--seed", o.seed!, 0, 2 ** 32 - 1));
      writeFileAtomic(o.out!, problemFileText(ps));
      console.log(`wrote ${ps.length} ${o.split} problems of ${task.name} to ${o.out}`);
    });
  tasks
    .command("sample")
    .description("print example prompts with reference reasoning traces and answers")
    .requiredOption("--task <name>", "task name")
    .option("--n <n>", "how many", "5")
    .option("--split <split>", "train or test", "train")
    .option("--seed <s>", "seed", "1")
    .action((o: Record<string, string>) => {
      const task = getTask(o.task!);
      for (const p of problems(
        task,
        splitArg(o.split!),
        positiveInt("--n", o.n!),
        Number(o.seed) || new Rng(1).nextU32(),
      )) {
        const s = task.solve(p);
        console.log(`[difficulty ${p.difficulty}] ${task.prompt(p)}\n  ${renderCompletion(s.reasoning, s.answer)}`);
      }
    });
}

function splitArg(split: string): Split {
  if (split !== "train" && split !== "test")
    throw new FrugalError("ARG", `--split must be train or test, got "${split}"`);
  return split;
}
