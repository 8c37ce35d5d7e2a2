// Decides whether OpenBLAS may use its AVX-512 (SkylakeX) sgemm instead of the Haswell kernels this
// machine pins with OPENBLAS_CORETYPE (older OpenBLAS builds can compute wrong results on newer CPUs).
// A child process loads the addon under SkylakeX and checks sgemm against float64 dot products for every
// transpose and the shape classes frugal uses; only a clean pass switches, and the verdict is cached per
// CPU model + OpenBLAS build + addon build. Anything unexpected keeps the safe Haswell setting.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng, randn } from "../common/rng.js";
import type { Kernels } from "./kernels.js";

const FAST = "SkylakeX";
const OPENBLAS_LIBS = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
];

export interface ProbeVerdict {
  coretype: string | null;
  reason: string;
}

/**
 * Shapes (M, N, K) covering the model's matmuls, attention's per-head products (whole, and a 64-row query block
 * against the keys up to it), odd tile edges.
 */
export const probeShapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 9],
  [31, 63, 127],
  [65, 129, 33],
  [128, 128, 64],
  [128, 64, 128],
  [2048, 256, 256],
  [2048, 768, 256],
  [2048, 256, 768],
  [256, 256, 2048],
  [768, 256, 2048],
  [256, 768, 2048],
  [2048, 64, 256],
  [64, 256, 2048],
  [16, 256, 256],
  [1, 768, 256],
  [7, 64, 256],
  [300, 1000, 50],
  [64, 617, 32],
  [617, 32, 64],
];

/** Runs in the child: every transpose × shape, sampled entries + all corners against float64 sums. */
export function checkGemm(k: Kernels): { ok: boolean; checked: number; worst: number; where: string } {
  const rng = new Rng(11);
  let worst = 0,
    where = "",
    checked = 0;
  for (const [M, N, K] of probeShapes)
    for (const ta of [0, 1])
      for (const tb of [0, 1])
        for (const beta of [0, 1]) {
          const lda = ta ? M : K,
            ldb = tb ? K : N;
          const A = randn(rng, M * K),
            B = randn(rng, K * N),
            C0 = randn(rng, M * N),
            C = C0.slice();
          k.gemm(ta, tb, M, N, K, 1, A, 0, lda, 0, B, 0, ldb, 0, beta, C, 0, N, 0, 1);
          const picks: [number, number][] = [
            [0, 0],
            [M - 1, N - 1],
            [0, N - 1],
            [M - 1, 0],
          ];
          for (let s = 0; s < 48; s++) picks.push([rng.int(0, M - 1), rng.int(0, N - 1)]);
          for (const [i, j] of picks) {
            let sum = 0,
              mag = 0;
            for (let kk = 0; kk < K; kk++) {
              const p = (ta ? A[kk * lda + i]! : A[i * lda + kk]!) * (tb ? B[j * ldb + kk]! : B[kk * ldb + j]!);
              sum += p;
              mag += Math.abs(p);
            }
            const want = sum + beta * C0[i * N + j]!;
            const err = Math.abs(C[i * N + j]! - want) / (1 + mag + Math.abs(C0[i * N + j]!));
            checked++;
            if (!(err <= worst)) {
              worst = err;
              where = `M=${M} N=${N} K=${K} ta=${ta} tb=${tb} beta=${beta} (${i},${j})`;
            }
          }
        }
  return { ok: worst < 1e-5, checked, worst, where };
}

function cpuModel(): string {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  } catch {
    return "?";
  }
}
function hasAvx512(): boolean {
  try {
    return /\bavx512f\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

function cacheKey(addon: string): string {
  const lib = OPENBLAS_LIBS.find((p) => existsSync(p));
  const libId = lib ? `${realpathSync(lib)}:${statSync(realpathSync(lib)).size}` : "none";
  return JSON.stringify([cpuModel(), libId, statSync(addon).mtimeMs, FAST]);
}

function cacheFile(): string {
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "frugal");
  return join(dir, "blas-probe.json");
}

/**
 * The OPENBLAS_CORETYPE to load with, or null to leave the environment as it is. Called once, before
 * the addon is loaded. FRUGAL_BLAS_PROBE=off skips the probe (keeps the machine's setting).
 */
export function chooseCoretype(addon: string): ProbeVerdict {
  const current = process.env.OPENBLAS_CORETYPE;
  if (process.env.FRUGAL_BLAS_PROBE === "off")
    return { coretype: null, reason: "probe disabled by FRUGAL_BLAS_PROBE=off" };
  if (current && current.toLowerCase() !== "haswell")
    return { coretype: null, reason: `OPENBLAS_CORETYPE=${current} set by the user` };
  if (!hasAvx512() || !existsSync(addon))
    return { coretype: null, reason: "no AVX-512 (or no addon): nothing to gain" };
  const key = cacheKey(addon),
    file = cacheFile();
  try {
    const c = JSON.parse(readFileSync(file, "utf8")) as { key: string; verdict: ProbeVerdict };
    if (c.key === key) return c.verdict;
  } catch {
    /* no cache yet */
  }
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [script, "--probe-child", addon], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, OPENBLAS_CORETYPE: FAST, OPENBLAS_NUM_THREADS: "1" },
  });
  let verdict: ProbeVerdict;
  try {
    const res = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as ReturnType<typeof checkGemm>;
    verdict = res.ok
      ? {
          coretype: FAST,
          reason: `${FAST} sgemm matched float64 references on ${res.checked} entries (worst rel. error ${res.worst.toExponential(1)})`,
        }
      : {
          coretype: current ?? "Haswell",
          reason: `${FAST} sgemm disagreed at ${res.where} (rel. error ${res.worst.toExponential(1)}); keeping ${current ?? "the default"}`,
        };
  } catch {
    verdict = {
      coretype: current ?? "Haswell",
      reason: `the ${FAST} probe failed (${(r.stderr || r.error?.message || "no output").slice(-200).trim()}); keeping ${current ?? "the default"}`,
    };
  }
  try {
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file + ".tmp", JSON.stringify({ key, verdict }));
    renameSync(file + ".tmp", file);
  } catch {
    /* a read-only home only costs a re-probe */
  }
  return verdict;
}

if (process.argv[2] === "--probe-child") {
  const addon = createRequire(import.meta.url)(process.argv[3]!) as Kernels & { setThreads(n: number): void };
  addon.setThreads(2);
  console.log(JSON.stringify(checkGemm(addon)));
}
