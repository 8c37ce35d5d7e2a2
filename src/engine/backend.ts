// Chooses the kernel set: the native addon (OpenBLAS + AVX loops + OpenMP) when it loads, otherwise
// the TS reference, announced once on stderr with the fix. FRUGAL_KERNELS=reference|native|webgpu forces one;
// webgpu without an adapter says which drivers to install and runs on the CPU kernels instead.
// Before loading, blas-probe.ts decides (with proof, cached) whether OpenBLAS may use its AVX-512 sgemm.
import { createRequire } from "node:module";
import { availableParallelism, cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { FrugalError } from "../common/errors.js";
import type { KernelSet, Kernels } from "./kernels.js";
import { referenceKernels } from "./reference.js";
import { chooseCoretype } from "./blas-probe.js";
import { localRanks } from "./dist.js";
import { setResidency } from "./tensor.js";
import { Gpu } from "./webgpu/bridge.js";
import { webgpuKernelsOn } from "./webgpu/kernels.js";

const here = dirname(fileURLToPath(import.meta.url));
export const addonPath = join(here, "../../build/Release/frugal_native.node");

interface NativeAddon extends Kernels {
  setThreads(n: number): void;
  info(): { simd: string; threads: number };
}

let active: KernelSet | null = null;
let blasVerdict = "";
/** OPENBLAS_CORETYPE as the machine set it, before the probe (benchmarks run PyTorch under it). */
export const machineCoretype = process.env.OPENBLAS_CORETYPE;
/** Why OpenBLAS runs with the coretype it has (the probe's verdict). */
export function blasReason(): string {
  return blasVerdict;
}
let native: KernelSet | null | undefined;

/**
 * Kernel threads of this process: FRUGAL_THREADS, else the cores it may run on. MPI ranks bound to cores see only
 * theirs; unbound ranks on one machine (all cores visible) share the machine's cores evenly.
 */
export function threadsPerProcess(): number {
  const set = Number(process.env.FRUGAL_THREADS);
  if (Number.isInteger(set) && set > 0) return set;
  const seen = availableParallelism(),
    all = cpus().length,
    local = localRanks();
  return local > 1 && seen >= all ? Math.max(1, Math.floor(all / local)) : seen;
}

/** Loads the addon once; null when it is missing or broken (the reason is kept for the warning). */
function loadNative(): { set: KernelSet | null; why: string } {
  // One thread inside OpenBLAS: our own OpenMP threads split the work, so the two never compete.
  process.env.OPENBLAS_NUM_THREADS ??= "1";
  // libgomp's default spin before sleeping is tiny on this VM, so every parallel region paid a futex
  // wake-up (sampling ran 10× slower); spin ~100k iterations, then sleep (an idle server burns nothing).
  // With more threads than cores on the machine (MPI ranks unbound), spinning threads starve the other ranks
  // (a GRPO step ran 30× slower, docs/log.md 2026-12-03), so they sleep at once instead.
  const threads = threadsPerProcess();
  process.env.GOMP_SPINCOUNT ??= threads * localRanks() > cpus().length ? "0" : "100000";
  try {
    const verdict = chooseCoretype(addonPath);
    if (verdict.coretype) process.env.OPENBLAS_CORETYPE = verdict.coretype;
    blasVerdict = verdict.reason;
    const addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    addon.setThreads(threads);
    const info = addon.info();
    const core = process.env.OPENBLAS_CORETYPE ?? "auto";
    return {
      set: {
        name: "native",
        k: addon,
        description: `native: OpenBLAS sgemm (coretype ${core}), ${info.simd} loops, ${info.threads} threads`,
      },
      why: "",
    };
  } catch (e) {
    return { set: null, why: (e as Error).message.split("\n")[0] ?? String(e) };
  }
}

export function nativeKernels(): KernelSet | null {
  if (native === undefined) {
    const { set, why } = loadNative();
    native = set;
    if (!set && process.env.FRUGAL_KERNELS !== "reference") {
      process.stderr.write(
        `frugal: native kernels unavailable (${why}); using the slower TypeScript reference kernels.\n` +
          `  Fix: apt-get install -y build-essential libopenblas-dev && npm rebuild frugal\n`,
      );
    }
  }
  return native;
}

export const referenceSet: KernelSet = {
  name: "reference",
  k: referenceKernels,
  description: "reference: plain TypeScript loops",
};

let gpuSet: { set: KernelSet | null; gpu: Gpu | null; why: string } | undefined;

/** What to install when Dawn finds no adapter (Linux: Mesa's GL or Vulkan drivers run it on the CPU). */
export const GPU_DRIVER_FIX =
  "install a GPU driver with Vulkan (NVIDIA/AMD), or Mesa for a CPU device: " +
  "apt-get install -y libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri (or mesa-vulkan-drivers)";

/** The WebGPU kernel set (Dawn in a worker thread), opened once; null with the reason when there is no GPU. */
export function webgpuKernels(): { set: KernelSet | null; gpu: Gpu | null; why: string } {
  if (gpuSet) return gpuSet;
  let opened: Gpu | string;
  try {
    opened = Gpu.open();
  } catch (e) {
    opened = (e as Error).message.split("\n")[0] ?? String(e);
  }
  if (typeof opened === "string") return (gpuSet = { set: null, gpu: null, why: opened });
  setResidency(opened);
  const set: KernelSet = { name: "webgpu", k: webgpuKernelsOn(opened), description: `webgpu: ${opened.adapter}` };
  return (gpuSet = { set, gpu: opened, why: "" });
}

function activate(set: KernelSet): KernelSet {
  if (gpuSet?.gpu) gpuSet.gpu.active = set.name === "webgpu";
  return (active = set);
}

/** The kernel set every op uses. */
export function kernels(): KernelSet {
  if (active) return active;
  const want = process.env.FRUGAL_KERNELS;
  if (want && want !== "native" && want !== "reference" && want !== "webgpu") {
    throw new FrugalError("CONFIG", `FRUGAL_KERNELS must be "native", "reference" or "webgpu", got "${want}"`);
  }
  if (want === "reference") return activate(referenceSet);
  if (want === "webgpu") {
    const g = webgpuKernels();
    if (g.set) return activate(g.set);
    const cpu = nativeKernels() ?? referenceSet;
    process.stderr.write(
      `frugal: no WebGPU device (${g.why}); using the ${cpu.name} CPU kernels.\n  Fix: ${GPU_DRIVER_FIX}\n`,
    );
    return activate(cpu);
  }
  const n = nativeKernels();
  if (!n && want === "native") {
    throw new FrugalError("NATIVE", "FRUGAL_KERNELS=native but the addon did not load; run `npm rebuild frugal`");
  }
  return activate(n ?? referenceSet);
}

/** Waits until the active kernels have finished all work queued so far (GPU kernels run asynchronously). */
export function syncKernels(): void {
  if (active?.name === "webgpu") gpuSet?.gpu?.sync();
}

/** Switch kernel sets (tests compare them); returns the previous one. */
export function useKernels(set: KernelSet): KernelSet {
  const prev = kernels();
  activate(set);
  return prev;
}
