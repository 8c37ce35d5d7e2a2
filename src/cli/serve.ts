// `frugal serve --model DIR [--guard DIR] [--port P] [--slots N] [--runs DIR]`: the OpenAI/DeepSeek-compatible
// API over continuous batching (request cost = the price table's cpu-vcpu price × the cores here) plus the
// run dashboard; `frugal dashboard [RUNS]` serves the dashboard alone.
import { cpus } from "node:os";
import { basename, dirname } from "node:path";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import { device, loadPrices } from "../cost/prices.js";
import { loadModelDir } from "../model/load.js";
import { useBf16Decoding } from "../model/half.js";
import { loadGuard } from "../safety/hf-guard.js";
import { steeringFor } from "../safety/steer.js";
import { Hono } from "hono";
import { createApp } from "../serve/app.js";
import { mountDashboard } from "../serve/dashboard.js";
import { positiveInt } from "./bench.js";

/** The name a checkpoint goes by: its stage directory for runs/…/stages/<name>/checkpoint, else its own name. */
export function checkpointName(dir: string): string {
  return basename(dir) === "checkpoint" ? basename(dirname(dir)) : basename(dir);
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "serve a model over the OpenAI/DeepSeek chat API (reasoning_content + content, SSE, continuous batching)",
    )
    .requiredOption("--model <dir>", "model checkpoint directory")
    .option("--guard <dir>", "guard checkpoint: check prompts before and replies while generating")
    .option("--port <p>", "port", "8000")
    .option("--host <h>", "interface to listen on", "127.0.0.1")
    .option("--slots <n>", "sequences decoded together (KV-cache slots)", "16")
    .option("--name <id>", "model id clients ask for (default: the checkpoint's stage directory name)")
    .option("--runs <dir>", "also serve the run dashboard over this runs directory at /dashboard", "runs")
    .option(
      "--bf16",
      "decode from bfloat16 copies of the matrices (about 1.7× faster at batch 1; rounds float32 weights)",
    )
    .action(
      (o: {
        model: string;
        guard?: string;
        port: string;
        host: string;
        slots: string;
        name?: string;
        runs: string;
        bf16?: boolean;
      }) => {
        const t = loadModelDir(o.model);
        if (o.bf16) useBf16Decoding(t.model);
        const guard = o.guard ? loadGuard(o.guard) : undefined,
          steering = guard ? steeringFor(o.model, guard) : null;
        const cpu = device(loadPrices(), "cpu-vcpu"),
          cores = Math.min(2, cpus().length);
        const name = o.name ?? checkpointName(o.model);
        const { app } = createApp({
          model: t.model,
          tokenizer: t.tokenizer,
          modelName: name,
          guard,
          steering,
          usdPerSecond: (cpu.usdPerHour * cores) / 3600,
          slots: positiveInt("--slots", o.slots),
        });
        mountDashboard(app, o.runs);
        serve({ fetch: app.fetch, port: positiveInt("--port", o.port), hostname: o.host }, (info) => {
          console.log(
            `frugal: serving ${name} on http://${o.host}:${info.port}/v1 (${guard ? (steering ? "guard steers its decision" : "guard blocks what it flags") : "no guard"}); dashboard of ${o.runs} at http://${o.host}:${info.port}/dashboard`,
          );
        });
      },
    );

  program
    .command("dashboard [runs]")
    .description(
      "the run dashboard alone: curves, bill, eval table and samples of every run in RUNS (default runs/), live; " +
        "and /webgpu, the tiny recipe trained in the browser on WebGPU",
    )
    .option("--port <p>", "port", "8001")
    .option("--host <h>", "interface to listen on", "127.0.0.1")
    .action((runs: string | undefined, o: { port: string; host: string }) => {
      const app = new Hono();
      mountDashboard(app, runs ?? "runs");
      serve({ fetch: app.fetch, port: positiveInt("--port", o.port), hostname: o.host }, (info) =>
        console.log(
          `frugal: dashboard of ${runs ?? "runs"} at http://${o.host}:${info.port}/dashboard; ` +
            `the tiny recipe trained on WebGPU in the browser at http://${o.host}:${info.port}/webgpu`,
        ),
      );
    });
}
