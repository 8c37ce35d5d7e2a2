// `frugal run RECIPE [--out DIR] [--resume] [--budget-usd X]` and `frugal speedrun` (the default mini-R1
// recipe from nothing), each ending with the per-stage table and the bill.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, type RunResult } from "../pipeline/runner.js";
import { decisionLine, intervalNote, withGuardLine } from "../safety/report.js";
import { num } from "./sample.js";
import { exitTogether, isMain } from "../engine/dist.js";

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

function action(
  recipeFile: string,
  o: { out?: string; resume?: boolean; budgetUsd?: string; prices?: string; quiet?: boolean },
): void {
  const recipe = readRecipe(recipeFile);
  const out = o.out ?? join("runs", recipe.name);
  const budgetUsd = o.budgetUsd === undefined ? undefined : num("--budget-usd", o.budgetUsd, 0, 1e12);
  const r = runRecipe(recipe, { outDir: out, resume: !!o.resume, budgetUsd, prices: o.prices, quiet: !!o.quiet });
  if (r.stopped) {
    process.exitCode = 3;
    exitTogether(3); // every rank took the same stop decision
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
      .option("--quiet", "no progress bars");
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
