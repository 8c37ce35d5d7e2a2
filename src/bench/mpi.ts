// `frugal bench mpi`: GRPO steps of the reference config (random weights, the addition task) in one process and
// on N MPI ranks in the same run, launched by mpirun: step time, the gradient all-reduce alone (timed after a
// barrier) and its share of the step, all-reduce times at three sizes (fitted to latency + bytes/bandwidth),
// and the same ranks unbound with spinning OpenMP threads, to show what binding buys. It asserts nothing.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { FrugalError } from "../common/errors.js";
import { repoRoot, tempDir } from "../common/files.js";
import { median } from "../common/stats.js";
import { allreduceGrads, allreduceSum, barrier, isMain, world } from "../engine/dist.js";
import { kernels } from "../engine/index.js";
import { threadsPerProcess } from "../engine/backend.js";
import { countParams, referenceConfig } from "../model/config.js";
import { allreduceModelMs, saveAllreduceFit, TEN_GBE, type AllreduceFit } from "../cost/forecast.js";
import { initModel } from "../model/transformer.js";
import { trainableParams } from "../model/lora.js";
import { GrpoConfig, trainGrpo } from "../rl/grpo.js";
import { taskSource, CHAR_VOCAB } from "../pipeline/stages/shared.js";
import { getTask, TASK_CHARS } from "../tasks/index.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";
import type { StageIO } from "../train/loop.js";

export interface MpiBenchOptions {
  ranks: number;
  steps: number;
  prompts: number;
  samples: number;
  newTokens: number;
  /** also time unbound ranks whose OpenMP threads spin (the fight frugal avoids by default; slow) */
  fight?: boolean;
}

/** What one launch measured (rank 0's view). */
export interface MpiWorkerResult {
  ranks: number;
  threadsPerRank: number;
  kernels: string;
  library: string;
  /** median GRPO step, and its time inside collectives (waiting for the slower rank included) */
  stepMs: number;
  commMs: number;
  /** the gradient all-reduce alone, after a barrier (no waiting), and what it moved */
  allreduceMs: number;
  allreduceBytes: number;
  /** all-reduce times of 1M, 4M and 16M floats */
  sizes: { bytes: number; ms: number }[];
}

const sizes = [1 << 20, 1 << 22, 1 << 24];

/** Runs inside every rank: `steps` timed GRPO steps after one warm-up step, then the all-reduce timings. */
export function mpiWorker(o: MpiBenchOptions): MpiWorkerResult | null {
  const w = world(),
    tokenizer = CharTokenizer.fromChars(TASK_CHARS);
  const config = { ...referenceConfig, vocab_size: CHAR_VOCAB };
  const cfg = GrpoConfig.parse({
    steps: o.steps + 1,
    promptsPerStep: o.prompts,
    groupSize: o.samples,
    maxNewTokens: o.newTokens,
    microBatch: 8,
  });
  const steps: { wallMs: number; commMs: number }[] = [];
  const scratch = tempDir("frugal-bench-mpi-");
  const io: StageIO = {
    name: "bench-mpi",
    dir: join(scratch, "grpo"),
    seed: 1,
    checkpointEvery: 1 << 30,
    progress: (_s, _t, m) => steps.push({ wallMs: m.wallMs!, commMs: m.commMs! }),
    shouldStop: () => null,
  };
  const source = taskSource(getTask("addition"), undefined);
  let out: ReturnType<typeof trainGrpo>;
  try {
    out = trainGrpo(io, () => ({ model: initModel(config, 7), tokenizer }), source, cfg, cfg);
  } finally {
    rmSync(scratch, { recursive: true, force: true }); // its checkpoints are not wanted
  }
  const params = trainableParams(out.trainee.model);
  const timeIt = (f: () => void, reps = 5) =>
    median(
      Array.from({ length: reps }, () => {
        barrier();
        const t0 = performance.now();
        f();
        return performance.now() - t0;
      }),
    );
  const allreduceMs = timeIt(() => allreduceGrads(params));
  const measured = sizes.map((n) => {
    const a = new Float32Array(n);
    return { bytes: 4 * n, ms: timeIt(() => allreduceSum(a)) };
  });
  if (!isMain()) return null;
  const timed = steps.slice(1);
  return {
    ranks: w.size,
    threadsPerRank: threadsPerProcess(),
    kernels: kernels().description,
    library: w.library,
    stepMs: median(timed.map((s) => s.wallMs)),
    commMs: median(timed.map((s) => s.commMs)),
    allreduceMs,
    allreduceBytes: 4 * countParams(config),
    sizes: measured,
  };
}

interface Launch {
  label: string;
  /** mpirun arguments before the program; null = one process without mpirun */
  mpirun: string[] | null;
  env: Record<string, string>;
}

export interface MpiBench {
  config: { params: number; prompts: number; samples: number; newTokens: number; steps: number };
  runs: (MpiWorkerResult & { label: string; speedup: number })[];
  /** the gradient all-reduce's share of a GRPO step on `ranks` ranks bound one per core (the issue's measure) */
  allreduceShare: number;
  /** fitted all-reduce cost over this machine's transport: ms = latencyMs + bytes / (gbPerS · 1e6) */
  fit: AllreduceFit;
  /** step time on N machines like this one: the one-process step split N ways plus the ring all-reduce, over
   * the transport measured here and over 10 Gb/s Ethernet (an assumption, not a measurement) */
  model: { ranks: number; stepMs: number; stepMs10GbE: number }[];
  /** the model on this machine: N bound one-thread ranks, predicted from the one-thread process, and measured */
  check: { predictedMs: number; measuredMs: number };
}

function launch(l: Launch, o: MpiBenchOptions): MpiWorkerResult {
  const cli = join(repoRoot, "dist/cli/main.js");
  const args = ["bench", "mpi", "--worker", "--steps", String(o.steps), "--prompts", String(o.prompts)].concat([
    "--samples",
    String(o.samples),
    "--new-tokens",
    String(o.newTokens),
  ]);
  const [cmd, argv] = l.mpirun
    ? ["mpirun", [...l.mpirun, ...Object.keys(l.env).flatMap((k) => ["-x", k]), process.execPath, cli, ...args]]
    : [process.execPath, [cli, ...args]];
  const r = spawnSync(cmd, argv, { encoding: "utf8", env: { ...process.env, ...l.env }, maxBuffer: 1 << 24 });
  const line = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{"))
    throw new FrugalError(
      "DEPENDENCY",
      `bench mpi: the "${l.label}" launch failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ""}): ` +
        `${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}. mpirun comes with openmpi-bin ` +
        "(apt-get install -y openmpi-bin libopenmpi-dev, then npm rebuild frugal).",
    );
  return JSON.parse(line) as MpiWorkerResult;
}

/** Least squares of ms = a + bytes·b over the measured sizes. */
function fitLine(pts: { bytes: number; ms: number }[]): AllreduceFit {
  const n = pts.length,
    mx = pts.reduce((a, p) => a + p.bytes, 0) / n,
    my = pts.reduce((a, p) => a + p.ms, 0) / n;
  const b =
    pts.reduce((a, p) => a + (p.bytes - mx) * (p.ms - my), 0) / pts.reduce((a, p) => a + (p.bytes - mx) ** 2, 0);
  return { latencyMs: Math.max(0, my - b * mx), gbPerS: 1 / (b * 1e6) };
}

/** The whole benchmark: one process; N ranks bound, unbound, oversubscribed (and with --fight, spinning too). */
export function benchMpi(o: MpiBenchOptions, log: (m: string) => void = () => {}): MpiBench {
  const cores = availableParallelism();
  const base = ["--allow-run-as-root", "--oversubscribe", "-np", String(o.ranks)];
  const launches: Launch[] = [
    { label: `1 process × ${cores} threads`, mpirun: null, env: {} },
    { label: "1 process × 1 thread", mpirun: null, env: { FRUGAL_THREADS: "1" } },
    { label: `${o.ranks} ranks, bound to cores`, mpirun: base, env: {} },
    { label: `${o.ranks} ranks, unbound`, mpirun: [...base, "--bind-to", "none"], env: {} },
    {
      label: `${o.ranks} ranks × ${cores} threads, unbound`,
      mpirun: [...base, "--bind-to", "none"],
      env: { FRUGAL_THREADS: String(cores) },
    },
  ];
  if (o.fight)
    launches.push({
      label: `${o.ranks} ranks × ${cores} threads, unbound, spinning`,
      mpirun: [...base, "--bind-to", "none"],
      env: { FRUGAL_THREADS: String(cores), GOMP_SPINCOUNT: "100000" },
    });
  const results = launches.map((l) => {
    log(`${l.label} …`);
    const r = launch(l, o);
    log(`${l.label}: step ${r.stepMs.toFixed(0)} ms, gradient all-reduce ${r.allreduceMs.toFixed(2)} ms`);
    return { ...r, label: l.label };
  });
  const one = results[0]!,
    single = results[1]!,
    bound = results[2]!;
  const fit = fitLine(bound.sizes);
  // one rank's compute on all cores, split N ways; the ring all-reduce moves 2(N−1)/N of the gradient per rank
  const computeMs = one.stepMs;
  const model = [1, 2, 4, 8, 16, 32].map((ranks) => ({
    ranks,
    stepMs: computeMs / ranks + allreduceModelMs(fit, bound.allreduceBytes, ranks),
    stepMs10GbE: computeMs / ranks + allreduceModelMs(TEN_GBE, bound.allreduceBytes, ranks),
  }));
  // the model checked where it can be here: N one-core ranks against one one-core process split N ways
  const check = {
    predictedMs: single.stepMs / o.ranks + allreduceModelMs(fit, bound.allreduceBytes, o.ranks),
    measuredMs: bound.stepMs,
  };
  saveAllreduceFit({ ...fit, measuredOn: `${bound.library}, ${o.ranks} ranks on one machine` });
  return {
    config: {
      params: bound.allreduceBytes / 4,
      prompts: o.prompts,
      samples: o.samples,
      newTokens: o.newTokens,
      steps: o.steps,
    },
    runs: results.map((r) => ({ ...r, speedup: one.stepMs / r.stepMs })),
    allreduceShare: bound.allreduceMs / bound.stepMs,
    fit,
    model,
    check,
  };
}
