// The step loop every training stage shares: resume from the stage's last checkpoint, run steps, log one
// JSON line of metrics per step, checkpoint every N steps, stop cleanly at a step boundary when the budget
// says so, and on a non-finite loss or gradient stop and keep the last good checkpoint. It knows nothing
// of what a step does (supervised or RL) or of prices; the runner supplies those through StageIO. Under MPI
// every rank runs the loop, rank 0's stop decision holds for all, and rank 0 alone writes metrics and checkpoints.
import { existsSync, readFileSync, writeFileSync, appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { FrugalError } from "../common/errors.js";
import { barrier, commMilliseconds, fromMain, isMain } from "../engine/dist.js";

export interface Usage {
  promptTokens: number;
  generatedTokens: number;
  trainedTokens: number;
  flops: number;
}
export const noUsage = (): Usage => ({ promptTokens: 0, generatedTokens: 0, trainedTokens: 0, flops: 0 });
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    generatedTokens: a.generatedTokens + b.generatedTokens,
    trainedTokens: a.trainedTokens + b.trainedTokens,
    flops: a.flops + b.flops,
  };
}

export interface StepResult {
  metrics: Record<string, number>;
  usage: Usage;
}

/** What the runner gives a stage. */
export interface StageIO {
  name: string;
  dir: string;
  seed: number;
  checkpointEvery: number;
  /** progress display; called after every step with the loop's name (a stage, or one member of it) */
  progress(step: number, total: number, metrics: Record<string, number>, name: string): void;
  /** a reason to stop before the next step (budget), or null */
  shouldStop(): string | null;
}

export interface LoopOutcome {
  steps: number;
  stopped: string | null;
  usage: Usage;
}

/** Several outcomes as one: steps and usage summed, the first stop's reason (e.g. every rank's share of a stage). */
export function sumOutcomes(all: readonly LoopOutcome[]): LoopOutcome {
  return {
    steps: all.reduce((a, o) => a + o.steps, 0),
    usage: all.reduce((a, o) => addUsage(a, o.usage), noUsage()),
    stopped: all.find((o) => o.stopped)?.stopped ?? null,
  };
}

const metricsFile = (io: StageIO) => join(io.dir, "metrics.jsonl");

/** Drops metric lines at or after `fromStep` (a resumed stage rewrites them identically). */
export function truncateMetrics(io: StageIO, fromStep: number): void {
  const f = metricsFile(io);
  if (!isMain() || !existsSync(f)) return;
  const keep = readFileSync(f, "utf8")
    .split("\n")
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step: number }).step < fromStep;
      } catch {
        return false;
      }
    });
  writeFileSync(f, keep.map((l) => l + "\n").join(""));
}

export function runLoop(
  io: StageIO,
  startStep: number,
  totalSteps: number,
  step: (s: number) => StepResult,
  save: (s: number) => void,
): LoopOutcome {
  mkdirSync(io.dir, { recursive: true });
  truncateMetrics(io, startStep);
  let usage = noUsage(),
    stopped: string | null = null,
    s = startStep;
  for (; s < totalSteps; s++) {
    // ranks see slightly different clocks; a budget stop must be taken by all of them at the same step
    stopped = fromMain(io.shouldStop());
    if (stopped) break;
    const t0 = performance.now(),
      comm0 = commMilliseconds();
    let r: StepResult;
    try {
      r = step(s);
    } catch (e) {
      if (e instanceof FrugalError && e.code === "NONFINITE") {
        throw new FrugalError(
          "NONFINITE",
          `${io.name}: step ${s} produced a non-finite value (${e.message}). The last good checkpoint (before step ${s}) is kept in ${io.dir}; lower the learning rate and rerun with --resume.`,
        );
      }
      if (e instanceof FrugalError && e.code === "DEVICE") {
        throw new FrugalError(
          "DEVICE",
          `${io.name}: step ${s} lost the GPU (${e.message}). The last checkpoint (before step ${s}) is kept in ${io.dir}; rerun with --resume, on the GPU or the CPU.`,
        );
      }
      throw e;
    }
    usage = addUsage(usage, r.usage);
    const metrics = { ...r.metrics, wallMs: performance.now() - t0, commMs: commMilliseconds() - comm0 };
    if (isMain()) appendFileSync(metricsFile(io), JSON.stringify({ step: s, ...metrics }) + "\n");
    io.progress(s + 1, totalSteps, metrics, io.name);
    if ((s + 1) % io.checkpointEvery === 0 && s + 1 < totalSteps) save(s + 1);
  }
  save(s);
  barrier(); // the next stage (or eval) on every rank reads what rank 0 just wrote
  return { steps: s - startStep, stopped, usage };
}
