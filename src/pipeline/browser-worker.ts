// The browser's training thread (a Web Worker, bundled by serve/webgpu-page.ts): runs the tiny recipe's
// pretraining stage with the webgpu kernels, the same code as `frugal run`, and posts each step to the page.
// It keeps no checkpoint (a tab has no run directory): the stage ends by stopping after its last step.
import * as E from "../engine/index.js";
import { pretrain } from "./stages/pretrain.js";
import type { StageIO } from "../train/loop.js";

export type PageMessage =
  | { type: "kernels"; name: string; description: string }
  | { type: "step"; step: number; total: number; loss: number; wallMs: number }
  | { type: "done"; dispatches: number; readBytes: number }
  | { type: "error"; message: string };

const port = globalThis as unknown as {
  postMessage(m: PageMessage): void;
  onmessage:
    ((e: { data: { recipe: { seed: number; stages: unknown[] }; steps: number; gpuPort: unknown } }) => void) | null;
  /** the page's channel to the GPU worker, which the browser shim of node:worker_threads' Worker uses */
  __frugalGpuPort?: unknown;
};

/** Thrown after the last step so that the loop's final checkpoint (files) is never written. */
class LastStep extends Error {}

function train(recipe: { seed: number; stages: unknown[] }, steps: number): void {
  process.env.FRUGAL_KERNELS = "webgpu";
  const k = E.kernels();
  port.postMessage({ type: "kernels", name: k.name, description: k.description });
  const stage = pretrain.schema.parse({ ...(recipe.stages[0] as object), steps });
  const io: StageIO = {
    name: stage.name,
    dir: "/browser",
    seed: recipe.seed * 7919, // the runner's seed for a recipe's first stage
    checkpointEvery: Number.MAX_SAFE_INTEGER,
    progress: (step, total, m) => {
      port.postMessage({ type: "step", step, total, loss: m.loss!, wallMs: m.wallMs! });
      if (step === total) throw new LastStep();
    },
    shouldStop: () => null,
  };
  pretrain.run(stage, io, { checkpointOf: () => "" });
}

port.onmessage = (e) => {
  port.__frugalGpuPort = e.data.gpuPort;
  try {
    train(e.data.recipe, e.data.steps);
  } catch (err) {
    if (!(err instanceof LastStep)) return port.postMessage({ type: "error", message: (err as Error).message });
  }
  const stats = E.webgpuKernels().gpu?.stats;
  port.postMessage({ type: "done", dispatches: stats?.dispatches ?? 0, readBytes: stats?.readBytes ?? 0 });
};
