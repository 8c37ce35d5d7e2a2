// `frugal bench engine`: trains the reference configuration for a few steps and reports the median step
// time, tokens/s, achieved GFLOP/s and the kernels that ran; if python3 has torch, times the same model in
// PyTorch in the same run and prints the ratio. A measurement command, not a test: it asserts nothing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as E from "../engine/index.js";
import { countParams, referenceConfig, type ModelConfig } from "../model/config.js";
import { trainFlops } from "../model/flops.js";
import { blasReason, machineCoretype } from "../engine/backend.js";
import { median } from "../common/stats.js";
import { timeTrainSteps } from "../train/timing.js";

export interface EngineBench {
  config: ModelConfig;
  batch: number;
  seq: number;
  steps: number;
  params: number;
  stepMs: number;
  tokensPerSec: number;
  gflops: number;
  kernels: string;
  blas: string;
  /** With the webgpu kernels: the same steps on the CPU kernels in the same run, and CPU/webgpu step time. */
  cpuStepMs?: number;
  speedupVsCpu?: number;
  /** with FRUGAL_WEBGPU_PROFILE=1: GPU wall time per shader over the timed run, largest first */
  gpuProfile?: { shader: string; calls: number; ms: number }[];
  /** PyTorch under the machine's own environment (OPENBLAS_CORETYPE as set), and frugal/PyTorch. */
  torchStepMs?: number;
  torchVersion?: string;
  ratio?: number;
  torchNote?: string;
  /** PyTorch with frugal's OpenBLAS coretype too, so the kernel choice is not what the ratio measures. */
  torchSameBlasStepMs?: number;
  ratioSameBlas?: number;
}

/** Finds a python3 with torch: FRUGAL_PYTHON, then Debian's /usr/bin/python3, then python3 on PATH. */
export function findTorchPython(): string | null {
  for (const py of [process.env.FRUGAL_PYTHON, "/usr/bin/python3", "python3"]) {
    if (!py) continue;
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return null;
}

const torchStepScript = join(dirname(fileURLToPath(import.meta.url)), "../../python/torch_step.py");

/** One run of python/torch_step.py with OPENBLAS_CORETYPE as given (unset when undefined): its JSON, or why not. */
export function runTorchStep(
  py: string,
  arg: string,
  coretype: string | undefined,
): { torchStepMs: number; torch: string } | string {
  const env = { ...process.env };
  if (coretype === undefined) delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = coretype;
  delete env.OPENBLAS_NUM_THREADS;
  const r = spawnSync(py, [torchStepScript, arg], { encoding: "utf8", env, maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as { torchStepMs: number; torch: string };
  } catch {
    return `torch run failed: ${(r.stderr || line).slice(-300)}`;
  }
}

export function benchEngine(opts: { steps: number; torch: boolean; batch?: number; seq?: number }): EngineBench {
  const batch = opts.batch ?? 16,
    seq = opts.seq ?? 128,
    config = { ...referenceConfig, max_position_embeddings: Math.max(referenceConfig.max_position_embeddings, seq) };
  const stepMs = median(timeTrainSteps(config, batch, seq, opts.steps));
  const tokens = batch * seq;
  const out: EngineBench = {
    config,
    batch,
    seq,
    steps: opts.steps,
    params: countParams(config),
    stepMs,
    tokensPerSec: tokens / (stepMs / 1000),
    gflops: trainFlops(config, tokens, seq) / (stepMs / 1000) / 1e9,
    kernels: E.kernels().description,
    blas: blasReason(),
  };
  if (E.kernels().name === "webgpu") {
    const profile = E.webgpuKernels().gpu?.profile;
    if (profile) out.gpuProfile = [...profile].map(([shader, p]) => ({ shader, ...p })).sort((a, b) => b.ms - a.ms);
    const gpu = E.useKernels(E.nativeKernels() ?? E.referenceSet);
    out.cpuStepMs = median(timeTrainSteps(config, batch, seq, opts.steps));
    out.speedupVsCpu = out.cpuStepMs / stepMs;
    E.useKernels(gpu);
  }
  if (!opts.torch) return out;
  const py = findTorchPython();
  if (!py || !existsSync(torchStepScript)) {
    out.torchNote = "python3 with torch not found (Debian: apt-get install python3-torch); no ratio";
    return out;
  }
  const arg = JSON.stringify({
    ...config,
    batch,
    seq,
    steps: opts.steps,
    threads: Number(process.env.FRUGAL_THREADS) || 2,
  });
  const runTorch = (coretype: string | undefined) => runTorchStep(py, arg, coretype);
  const t = runTorch(machineCoretype);
  if (typeof t === "string") {
    out.torchNote = t;
    return out;
  }
  out.torchStepMs = t.torchStepMs;
  out.torchVersion = t.torch;
  out.ratio = stepMs / t.torchStepMs;
  const ours = process.env.OPENBLAS_CORETYPE;
  if (ours !== machineCoretype) {
    const t2 = runTorch(ours);
    if (typeof t2 !== "string") {
      out.torchSameBlasStepMs = t2.torchStepMs;
      out.ratioSameBlas = stepMs / t2.torchStepMs;
    }
  }
  return out;
}
