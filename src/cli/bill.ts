// `frugal bill RUN_DIR [--json]`, `frugal bill --example deepseek-r1`, and `frugal forecast RECIPE`.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { exampleBill, makeBill, renderBill } from "../cost/bill.js";
import { forecastRecipe } from "../pipeline/forecast.js";
import { readLedger } from "../cost/ledger.js";
import { loadPrices } from "../cost/prices.js";
import { loadAllreduceFit } from "../cost/forecast.js";
import { readRecipe } from "../pipeline/recipe.js";
import { positiveInt } from "./bench.js";
import { num } from "./sample.js";

export function registerBill(program: Command): void {
  program
    .command("bill [runDir]")
    .description(
      "the bill of a run in DeepSeek's shape: per stage device-hours and dollars, tokens, utilisation, forecast vs actual",
    )
    .option("--example <name>", "print a published bill instead (deepseek-r1)")
    .option("--json", "print JSON")
    .action((runDir: string | undefined, o: { example?: string; json?: boolean }) => {
      let bill;
      if (o.example) bill = exampleBill(o.example);
      else {
        if (!runDir) throw new FrugalError("ARG", "give a run directory (e.g. runs/mini-r1) or --example deepseek-r1");
        if (!existsSync(join(runDir, "ledger.jsonl")))
          throw new FrugalError("ARG", `${runDir} has no ledger.jsonl; is it a run directory made by frugal run?`);
        const { entries, skipped } = readLedger(runDir);
        const runFile = join(runDir, "run.json");
        const runWallS = existsSync(runFile)
          ? (JSON.parse(readFileSync(runFile, "utf8")) as { wallS: number }).wallS
          : undefined;
        bill = makeBill(entries, skipped, runWallS);
      }
      if (o.json) console.log(JSON.stringify(bill));
      else console.log(renderBill(bill));
    });

  program
    .command("forecast <recipe>")
    .description(
      "predict each stage's time and cost before running (analytic FLOPs + a short calibration on this machine), and project onto other hardware",
    )
    .option("--device <kind>", "project onto this device kind (e.g. h800)", "h800")
    .option("--count <n>", "how many of them", "8")
    .option("--utilisation <u>", "assumed fraction of peak FLOP/s", "0.4")
    .option("--prices <file>", "extra price table")
    .option("--ranks <n>", "MPI ranks (machines like the recipe's device), data-parallel", "1")
    .option("--link-gbps <x>", "all-reduce bandwidth, GB/s (default: measured by `frugal bench mpi`, else 10 GbE)")
    .option("--link-latency-ms <x>", "all-reduce latency per hop, ms (with --link-gbps)", "0.05")
    .option("--json", "print JSON")
    .action((file: string, o: Record<string, string | boolean>) => {
      const recipe = readRecipe(file),
        prices = loadPrices(o.prices ? String(o.prices) : undefined);
      const ranks = positiveInt("--ranks", String(o.ranks));
      const fit = o.linkGbps
        ? {
            gbPerS: num("--link-gbps", String(o.linkGbps), 1e-6, 1e6),
            latencyMs: num("--link-latency-ms", String(o.linkLatencyMs), 0, 1e6),
            measuredOn: "given on the command line",
          }
        : loadAllreduceFit();
      const f = forecastRecipe(
        recipe,
        prices,
        {
          device: String(o.device),
          count: positiveInt("--count", String(o.count)),
          utilisation: num("--utilisation", String(o.utilisation), 1e-6, 1),
        },
        { ranks, fit },
      );
      if (o.json) {
        console.log(JSON.stringify(f));
        return;
      }
      for (const s of f.stages)
        console.log(
          `${s.name.padEnd(16)} ${s.seconds.toFixed(0).padStart(6)} s   ${(s.flops / 1e12).toFixed(2)} TFLOP   ${s.detail}`,
        );
      console.log(`${"evaluation".padEnd(16)} ${f.evalSeconds.toFixed(0).padStart(6)} s`);
      const on = ranks > 1 ? `${ranks} ranks × ${f.count}×${f.device}` : `${f.count}×${f.device}`;
      console.log(`total on ${on}: ${(f.totalSeconds / 60).toFixed(1)} min, $${f.costUsd.toFixed(4)}`);
      if (ranks > 1)
        console.log(
          `all-reduce: ${fit.latencyMs} ms per hop + ${fit.gbPerS.toFixed(2)} GB/s (${fit.measuredOn ?? "measured"})`,
        );
      const p = f.projection!;
      console.log(
        `on ${p.count}×${p.device} at ${(100 * p.utilisation).toFixed(0)}% utilisation: ${p.seconds < 1 ? `${(p.seconds * 1000).toFixed(1)} ms` : `${p.seconds.toFixed(1)} s`} of compute, $${p.costUsd.toFixed(6)}`,
      );
    });
}
