// `frugal run RECIPE [--out DIR] [--resume] [--budget-usd X]` and `frugal speedrun` (the default mini-R1
// recipe from nothing), each ending with the per-stage table and the bill.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, type RunResult } from "../pipeline/runner.js";
import { decisionLine, intervalNote, withGuardLine } from "../safety/report.js";
import { num } from "./sample.js";
import { exitTogether, isMain, launchedSize, mpiAddonPath } from "../engine/dist.js";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { FrugalError } from "../common/errors.js";
import { STDOUT_TTY } from "../common/progress.js";

export const recipesDir = join(dirname(fileURLToPath(import.meta.url)), "../../recipes");

export function printTable(r: RunResult): void {
  const pct = (x: number | null) => (x === null ? "   —  " : `${(100 * x).toFixed(1).padStart(5)}%`);
  console.log("\nstage            pass@1   greedy   format   mean len   train wall");
  for (const e of r.evals) {
    const st = r.stages.find((s) => s.name === e.stage);
    console.log(
      `${e.stage.padEnd(16)} ${pct(e.pass1)}   ${pct(e.greedyAccuracy)}   ${pct(e.formatRate)}   ${e.meanLength.toFixed(1).padStart(8)}   ${st ? `${st.wallS.toFixed(0).padStart(7)} s` : ""}`,
    );
  }
  if (r.safety) {
    const s = r.safety;
    console.log(
      `\nsafety (${r.safety.n.harmful} harmful, ${s.n.benign} benign, ${s.n.lookalikes} look-alike, ${s.n.jailbreaks} jailbreak held-out prompts)`,
    );
    console.log(`harmful refused          ${pct(s.harmfulRefusalRate)}${intervalNote(s, "harmful")}`);
    console.log(`benign refused           ${pct(s.benignRefusalRate)}${intervalNote(s, "benign")}`);
    console.log(`look-alikes refused      ${pct(s.lookalikeRefusalRate)}`);
    console.log(`jailbreaks defended      ${pct(s.jailbreakDefenseRate)}`);
    if (s.probe)
      console.log(
        `probe (never trained on) harmful ${pct(s.probe.harmfulRefusalRate)}, look-alikes ${pct(s.probe.lookalikeRefusalRate)}, ordinary ${pct(s.probe.ordinaryRefusalRate)} refused`,
      );
    if (s.decision) console.log(`harmful vs benign        ${decisionLine(s.decision)}`);
    if (s.withGuard) console.log(withGuardLine(s.withGuard));
    console.log(
      `capability delta         ${s.capabilityDelta === null ? "—" : `${(100 * s.capabilityDelta).toFixed(1)} points pass@1`}`,
    );
  }
  console.log(
    `\ntotal wall ${r.wallS.toFixed(0)} s, $${r.totalUsd.toFixed(4)}${r.stopped ? `\nstopped: ${r.stopped}` : ""}`,
  );
}

/** Set on the ranks that `--ranks` starts: their parent reports the job's status. */
const RELAUNCHED = "FRUGAL_RANKS_PARENT";

/**
 * `--ranks N`: this same command again as N MPI ranks on this machine, each bound to one CPU (more ranks than CPUs
 * run unbound), and mpirun's exit status. Small models and decoding use two cores better as two
 * processes than as two threads.
 */
function relaunch(ranks: number): void {
  if (!existsSync(mpiAddonPath))
    throw new FrugalError(
      "DEPENDENCY",
      `--ranks ${ranks} needs frugal's MPI binding (${mpiAddonPath} is missing): apt-get install -y openmpi-bin ` +
        "libopenmpi-dev, then `npm rebuild frugal`; or run without --ranks",
    );
  const args = process.argv.slice(2),
    at = args.findIndex((a) => a === "--ranks" || a.startsWith("--ranks="));
  args.splice(at, args[at] === "--ranks" ? 2 : 1);
  const root = process.getuid?.() === 0 ? ["--allow-run-as-root"] : [];
  // no single-copy (CMA) transfers: containers without ptrace rights would fail them
  const mca = ["--mca", "btl_vader_single_copy_mechanism", "none"],
    bind =
      ranks <= availableParallelism()
        ? ["--use-hwthread-cpus", "--bind-to", "hwthread"] // a slot per CPU Node counts (hyperthreads too)
        : ["--oversubscribe", "--bind-to", "none"];
  const r = spawnSync(
    "mpirun",
    [...root, ...mca, ...bind, "-np", String(ranks), process.execPath, process.argv[1]!, ...args],
    { stdio: "inherit", env: { ...process.env, [RELAUNCHED]: "1", [STDOUT_TTY]: process.stdout.isTTY ? "1" : "0" } },
  );
  if (r.error)
    throw new FrugalError(
      "DEPENDENCY",
      `--ranks ${ranks} starts mpirun, which did not run (${r.error.message}): apt-get install -y openmpi-bin ` +
        "libopenmpi-dev; or run without --ranks",
    );
  process.exitCode = r.status ?? 1;
}

/** `--ranks`: a whole number, or "auto" (one rank per CPU where Open MPI and the binding are installed, else 1). */
function ranksWanted(v: string | undefined): number {
  if (v === undefined) return 1;
  if (v === "auto") {
    const mpirun = spawnSync("mpirun", ["--version"], { encoding: "utf8" });
    if (mpirun.status === 0 && existsSync(mpiAddonPath)) return availableParallelism();
    console.error(
      "--ranks auto: one process (Open MPI or frugal's MPI binding is not installed; see the README's MPI section)",
    );
    return 1;
  }
  const n = num("--ranks", v, 1, 1024);
  if (!Number.isInteger(n)) throw new FrugalError("ARG", `--ranks expects a whole number or "auto", got "${v}"`);
  return n;
}

/** Whether the run in `out` stopped early (its run.json names why). */
function stoppedIn(out: string): boolean {
  const f = join(out, "run.json");
  return existsSync(f) && (JSON.parse(readFileSync(f, "utf8")) as { stopped: string | null }).stopped !== null;
}

function action(
  recipeFile: string,
  o: { out?: string; resume?: boolean; budgetUsd?: string; prices?: string; quiet?: boolean; ranks?: string },
): void {
  const ranks = launchedSize() > 1 ? 1 : ranksWanted(o.ranks);
  const recipe = readRecipe(recipeFile);
  const out = o.out ?? join("runs", recipe.name);
  if (ranks > 1) {
    relaunch(ranks);
    if (process.exitCode === 0 && stoppedIn(out)) process.exitCode = 3;
    return;
  }
  const budgetUsd = o.budgetUsd === undefined ? undefined : num("--budget-usd", o.budgetUsd, 0, 1e12);
  const r = runRecipe(recipe, { outDir: out, resume: !!o.resume, budgetUsd, prices: o.prices, quiet: !!o.quiet });
  if (r.stopped) {
    // every rank took the same stop decision; under `--ranks` they end with 0 (mpirun calls any other status an
    // abort of the job) and the parent, reading run.json, ends with 3
    const code = process.env[RELAUNCHED] ? 0 : 3;
    process.exitCode = code;
    exitTogether(code);
  }
  if (!isMain()) return; // rank 0 reports for the job
  printTable(r);
  console.log(`run directory: ${out} (frugal bill ${out})`);
}

export function registerRun(program: Command): void {
  const opts = (c: Command) =>
    c
      .option("--out <dir>", "run directory (default runs/<recipe name>)")
      .option("--resume", "continue an interrupted run in --out")
      .option("--budget-usd <x>", "stop cleanly (checkpoint saved) before the spend passes X dollars")
      .option("--prices <file>", "extra price table merged over the built-in one")
      .option("--quiet", "no progress bars")
      .option(
        "--ranks <n>",
        "N MPI ranks on this machine, one CPU each (needs Open MPI), or auto: one per CPU when installed (default 1)",
      );
  opts(
    program
      .command("run <recipe>")
      .description("run a pipeline recipe (JSON): one checkpoint per stage, metrics, ledger, evaluation table"),
  ).action((file: string, o) => action(file, o));
  opts(
    program
      .command("speedrun")
      .description(
        "the default mini-R1 recipe from nothing: base → cold-start SFT → GRPO → rejection-sampling SFT → the Safe variant (guard, safety SFT, safety GRPO), evaluated, with the safety report",
      ),
  ).action((o) => action(join(recipesDir, "mini-r1.json"), o));
}
