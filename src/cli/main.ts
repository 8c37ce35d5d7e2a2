#!/usr/bin/env node
// The `frugal` command: wires one file per command; user errors print one line, bugs print a stack.
import { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { registerBench } from "./bench.js";
import { registerSample } from "./sample.js";
import { registerEval } from "./eval.js";
import { registerRun } from "./run.js";
import { registerBill } from "./bill.js";
import { registerSafety } from "./safety.js";
import { registerServe } from "./serve.js";
import { registerExport } from "./export.js";

const program = new Command("frugal").description(
  "train small reasoning models with the DeepSeek-R1 recipe on a CPU, with the bill",
);
program
  .option("--device <kind>", "cpu (native or reference kernels) or webgpu (FRUGAL_KERNELS=webgpu)")
  .hook("preAction", (cmd) => {
    const d = (cmd.opts() as { device?: string }).device;
    if (d === undefined) return;
    if (d !== "cpu" && d !== "webgpu") throw new FrugalError("ARG", `--device must be "cpu" or "webgpu", got "${d}"`);
    if (d === "webgpu") process.env.FRUGAL_KERNELS = "webgpu";
    else if (process.env.FRUGAL_KERNELS === "webgpu") delete process.env.FRUGAL_KERNELS;
  });
registerBench(program);
registerSample(program);
registerEval(program);
registerRun(program);
registerBill(program);
registerSafety(program);
registerServe(program);
registerExport(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof FrugalError && e.code !== "INTERNAL") {
    console.error(`frugal: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
