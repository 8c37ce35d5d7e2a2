// The tiny recipe on the webgpu kernels against the CPU kernels: every stage's loss within 1e-3 relative at every
// logged step (pretraining shortened to 30 steps, later stages from the CPU run's checkpoints: rounding compounds,
// and past ~50 steps two CPU kernel sets drift apart by more than 1e-3 too); the weights stay on the device; a
// device lost mid-run keeps the last checkpoint and --resume finishes the run on the CPU.
// Skips without a WebGPU adapter, unless FRUGAL_REQUIRE_WEBGPU=1 (CI installs Mesa's GL driver for one).
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../common/testing.js";
import { FrugalError } from "../common/errors.js";
import * as E from "../engine/index.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";
import type { Recipe } from "../pipeline/recipe.js";

const cli = join(repoRoot, "dist/cli/main.js");

test("no WebGPU adapter: a message naming the drivers to install, and the CPU kernels run", () => {
  // Dawn has no D3D12 on Linux: as a machine without a GPU driver would be
  const r = spawnSync(
    process.execPath,
    [cli, "--device", "webgpu", "bench", "engine", "--steps", "1", "--no-torch", "--json"],
    {
      encoding: "utf8",
      env: { ...process.env, FRUGAL_WEBGPU_BACKEND: "d3d12" },
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /no WebGPU device \(no WebGPU adapter\); using the (native|reference) CPU kernels/);
  assert.match(r.stderr, /apt-get install -y libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri/);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { kernels: string; cpuStepMs?: number };
  assert.match(out.kernels, /^(native|reference):/);
  assert.equal(out.cpuStepMs, undefined, "no webgpu, so no CPU comparison");
});

const gpu = E.webgpuKernels();
const skip = gpu.set ? false : `no WebGPU device (${gpu.why})`;

/** tiny.json; `baseOnly` keeps just the pretraining stage, shortened (the GL driver takes ~0.5 s a step). */
function tiny(baseOnly?: { steps: number; checkpointEvery: number }): Recipe {
  const r = readRecipe(join(repoRoot, "recipes/tiny.json"));
  if (!baseOnly) return r;
  const base = r.stages[0] as { steps: number; warmup: number };
  base.steps = baseOnly.steps;
  base.warmup = 2;
  return { ...r, checkpointEvery: baseOnly.checkpointEvery, stages: [r.stages[0]!] };
}

const lossLines = (out: string, stage: string) =>
  readFileSync(join(stageDir(out, stage), "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number });

function runOn(set: E.KernelSet, recipe: Recipe, out: string, resume = false) {
  const prev = E.useKernels(set);
  try {
    return runRecipe(recipe, { outDir: out, resume, quiet: true, noForecast: true });
  } finally {
    E.useKernels(prev);
    E.releasePool();
  }
}

function sameLosses(cpuOut: string, gpuOut: string, stage: string): number {
  const x = lossLines(cpuOut, stage),
    y = lossLines(gpuOut, stage);
  assert.equal(y.length, x.length, `${stage}: steps logged`);
  assert.ok(x.length > 0);
  x.forEach((m, i) => {
    // GRPO's loss can sit near 0 (advantages sum to zero per group): there 1e-3 of 1e-2 is the bound
    const rel = Math.abs(y[i]!.loss - m.loss) / Math.max(1e-2, Math.abs(m.loss));
    assert.ok(rel <= 1e-3, `${stage} step ${m.step}: loss ${y[i]!.loss} on webgpu vs ${m.loss} (rel ${rel})`);
  });
  return x.length;
}

const cpu = E.nativeKernels() ?? E.referenceSet;
let dispatchesPerStep = 0;

test(
  "pretraining on webgpu: the loss within 1e-3 of the CPU kernels' at each of 30 steps, weights kept on the device",
  { skip },
  () => {
    const root = tempDir(),
      g = gpu.gpu!;
    runOn(cpu, tiny({ steps: 30, checkpointEvery: 30 }), join(root, "cpu"));
    const s0 = { ...g.stats };
    runOn(gpu.set!, tiny({ steps: 30, checkpointEvery: 30 }), join(root, "gpu"));
    assert.equal(sameLosses(join(root, "cpu"), join(root, "gpu"), "base"), 30);
    dispatchesPerStep = (g.stats.dispatches - s0.dispatches) / 30;
    assert.ok(dispatchesPerStep > 50, `${dispatchesPerStep} dispatches per step`);
    // each step reads back its loss, log-probs and gradient norms, never the weights: with one checkpoint at the
    // end (and the eval), fewer bytes come back per step than half of one copy of the weights
    const weightsBytes = statSync(join(stageDir(join(root, "gpu"), "base"), "checkpoint/model.safetensors")).size;
    const readPerStep = (g.stats.readBytes - s0.readBytes) / 30;
    assert.ok(readPerStep < weightsBytes / 2, `read back ${readPerStep} bytes per step; weights ${weightsBytes}`);
  },
);

test(
  "SFT, GRPO, rejection-sampling SFT and distillation on webgpu, each from the CPU run's checkpoint: losses within 1e-3",
  { skip },
  () => {
    const root = tempDir(),
      cpuOut = join(root, "cpu"),
      names = ["base", "sft", "grpo", "rs-sft", "distill"];
    runOn(cpu, tiny(), cpuOut);
    // each stage on webgpu starts from the CPU run's finished stages before it (checkpoints and done.json), so
    // the comparison measures that stage's kernels, not rounding compounded over every stage before it
    for (let i = 1; i < names.length; i++) {
      const out = join(root, `gpu-${names[i]}`);
      mkdirSync(join(out, "stages"), { recursive: true });
      cpSync(join(cpuOut, "recipe.json"), join(out, "recipe.json"));
      for (const prev of names.slice(0, i)) cpSync(stageDir(cpuOut, prev), stageDir(out, prev), { recursive: true });
      assert.equal(runOn(gpu.set!, tiny(), out, true).stopped, null);
      sameLosses(cpuOut, out, names[i]!);
    }
  },
);

test("a GPU lost mid-run stops with the last checkpoint kept; --resume finishes on the CPU", { skip }, () => {
  const out = join(tempDir(), "lost"),
    g = gpu.gpu!;
  g.loseAt = g.stats.dispatches + Math.round(8.5 * (dispatchesPerStep || 150)); // inside step 8 of 12
  assert.throws(
    () => runOn(gpu.set!, tiny({ steps: 12, checkpointEvery: 5 }), out),
    (e: unknown) => e instanceof FrugalError && e.code === "DEVICE" && /--resume/.test(e.message),
  );
  const done = lossLines(out, "base").length;
  assert.ok(done >= 5 && done < 12, `the base logged ${done} steps before the loss`);
  assert.ok(existsSync(join(stageDir(out, "base"), "checkpoint/model.safetensors")), "the checkpoint is kept");
  const r = runOn(cpu, tiny({ steps: 12, checkpointEvery: 5 }), out, true);
  assert.equal(r.stopped, null);
  assert.deepEqual(
    lossLines(out, "base").map((m) => m.step),
    [...Array(12).keys()],
  );
});
