// Runs a recipe: one directory per stage (checkpoint/, metrics.jsonl, done.json), a ledger entry per
// stage and per evaluation, progress bars, a budget cap checked before every step, and --resume, which
// skips finished stages and continues an interrupted one from its last checkpoint. Evaluations of every
// stage's checkpoint on held-out problems end the run, as one table. Under MPI every rank runs this file,
// rank 0's view of the run directory decides what is done, and rank 0 alone writes.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { progress } from "../common/progress.js";
import { releasePool } from "../engine/index.js";
import { barrier, commMilliseconds, fromMain, isMain, localRanks, world } from "../engine/dist.js";
import { checkRanksAgree } from "./ranks.js";
import { FrugalError } from "../common/errors.js";
import { hfDir, isHfInput } from "./hf-input.js";
import { appendEntry, makeEntry, readLedger, type LedgerEntry } from "../cost/ledger.js";
import { device as lookupDevice, loadPrices, type PriceTable } from "../cost/prices.js";
import { loadAllreduceFit, type Forecast } from "../cost/forecast.js";
import { forecastRecipe } from "./forecast.js";
import { repoRoot, writeFileAtomic } from "../common/files.js";
import { loadGuard } from "../safety/hf-guard.js";
import { steeringFor } from "../safety/steer.js";
import { safetyEval, type SafetyReport } from "../safety/report.js";
import { getTask } from "../tasks/index.js";
import { evaluate, type EvalReport } from "../tasks/eval.js";
import { readProblemFile } from "../tasks/problem-file.js";
import type { StageIO } from "../train/loop.js";
import type { Recipe } from "./recipe.js";
import { loadModelDir } from "../model/load.js";
import { kindOf } from "./stages/index.js";

type Device = ReturnType<typeof lookupDevice>;

export interface RunOptions {
  outDir: string;
  resume: boolean;
  budgetUsd?: number;
  prices?: string;
  quiet?: boolean;
  noForecast?: boolean;
}
export interface EvalRow {
  stage: string;
  pass1: number;
  greedyAccuracy: number | null;
  formatRate: number;
  meanLength: number;
  evalWallS: number;
  report: EvalReport;
}
export interface RunResult {
  stopped: string | null;
  evals: EvalRow[];
  safety: SafetyReport | null;
  wallS: number;
  totalUsd: number;
  stages: { name: string; wallS: number; steps: number }[];
}

export const stageDir = (out: string, name: string) => join(out, "stages", name);

/** Rank 0 checks and claims the run directory; the other ranks take its verdict (an error stops them all). */
function prepareDir(out: string, recipe: Recipe, resume: boolean): void {
  let why: string | null = null;
  if (isMain())
    try {
      claimDir(out, recipe, resume);
    } catch (e) {
      if (!(e instanceof FrugalError)) throw e;
      why = e.message;
    }
  why = fromMain(why);
  if (why) throw new FrugalError("RUN", why);
}

function claimDir(out: string, recipe: Recipe, resume: boolean): void {
  const saved = join(out, "recipe.json");
  if (existsSync(out) && readdirSync(out).length > 0) {
    if (!resume)
      throw new FrugalError("RUN", `${out} already holds a run; pass --resume to continue it, or choose another --out`);
    if (existsSync(saved) && readFileSync(saved, "utf8") !== JSON.stringify(recipe, null, 2)) {
      throw new FrugalError(
        "RUN",
        `${out}/recipe.json differs from the recipe given; --resume continues the same recipe only (start a new --out to change it)`,
      );
    }
  }
  mkdirSync(out, { recursive: true });
  writeFileAtomic(saved, JSON.stringify(recipe, null, 2));
}

function describe(m: Record<string, number>): string {
  const f = (k: string, d = 3) => (m[k] === undefined ? null : `${k} ${m[k]!.toFixed(d)}`);
  const parts =
    "reward" in m
      ? [
          f("reward"),
          f("accuracy", 2),
          f("format", 2),
          f("lenMean", 0),
          f("kl", 4),
          m.tokensPerSec !== undefined ? `${Math.round(m.tokensPerSec)} tok/s` : null,
        ]
      : [
          f("loss"),
          f("lr", 5),
          f("gradNorm", 2),
          m.tokens !== undefined && m.wallMs ? `${Math.round(m.tokens / (m.wallMs / 1000))} tok/s` : null,
        ];
  return parts.filter(Boolean).join(" | ");
}

/** What the run has spent so far (closed ledger entries) and the budget cap, checked before every step. */
class Spend {
  lastStepS = 0;
  constructor(
    public closedUsd: number,
    readonly usdPerS: number,
    readonly capUsd: number | undefined,
  ) {}

  /** Why the next step, started now in a stage open since stageStart, would pass the cap; null when it would not. */
  check(stageStart: number): string | null {
    if (this.capUsd === undefined) return null;
    const spent = this.closedUsd + ((performance.now() - stageStart) / 1000) * this.usdPerS;
    if (spent + this.lastStepS * this.usdPerS <= this.capUsd) return null;
    const next =
      this.lastStepS > 0
        ? `, the next step would cost about $${(this.lastStepS * this.usdPerS).toFixed(6)}`
        : " before the first step";
    return `budget cap $${this.capUsd} reached: $${spent.toPrecision(4)} spent${next}`;
  }
}

type StageSummary = RunResult["stages"][number];

/** Runs one stage (skipped when done.json says it finished): its summary, or why it stopped. */
function runStage(
  s: Recipe["stages"][number],
  recipe: Recipe,
  out: string,
  dev: Device,
  opts: RunOptions,
  spend: Spend,
  forecast: Forecast | null,
): { summary: StageSummary } | { stopped: string } {
  const dir = stageDir(out, s.name),
    done = join(dir, "done.json");
  if (fromMain(existsSync(done))) return { summary: JSON.parse(readFileSync(done, "utf8")) as StageSummary };
  const bar = progress(s.name, { quiet: !!opts.quiet });
  const st0 = performance.now(),
    cpu0 = usageNow();
  let stepStart = performance.now();
  const io: StageIO = {
    name: s.name,
    dir,
    seed: recipe.seed * 7919 + recipe.stages.indexOf(s),
    checkpointEvery: recipe.checkpointEvery,
    progress: (step, total, m, name) => {
      bar.update(step, total, describe(m), name);
      spend.lastStepS = (performance.now() - stepStart) / 1000;
      stepStart = performance.now();
    },
    shouldStop: () => {
      stepStart = performance.now();
      return spend.check(st0);
    },
  };
  const r = kindOf(s).run(s, io, {
    checkpointOf: (name: string) => (isHfInput(name) ? hfDir(name) : join(stageDir(out, name), "checkpoint")),
  });
  bar.stop();
  const u = r.usage;
  const entry = record(out, recipe, dev, s.name, "train", st0, cpu0, {
    tokens: { prompt: u.promptTokens, generated: u.generatedTokens, trained: u.trainedTokens },
    flops: u.flops,
    forecastS: forecast?.stages.find((f) => f.name === s.name)?.seconds,
    stopped: r.stopped,
    config: s,
  });
  spend.closedUsd += entry.costUsd;
  if (r.stopped) {
    const where = `stopped cleanly with the checkpoint saved in ${dir}/checkpoint (continue with --resume)`;
    return { stopped: `${s.name}: ${r.stopped}; ${where}` };
  }
  const summary = { name: s.name, wallS: entry.wallS, steps: r.steps, ...(r.notes ?? {}) };
  if (isMain()) writeFileAtomic(done, JSON.stringify(summary));
  barrier(); // the next stage reads this one's checkpoint, which rank 0 wrote
  if (!opts.quiet) console.log(`${s.name}: done in ${entry.wallS.toFixed(1)} s`);
  return { summary };
}

/**
 * Bills what no entry covered (directory setup, writing results, the gaps between entries), so that the ledger
 * adds up to this invocation's wall time; returns its cost.
 */
function billOverhead(out: string, recipe: Recipe, dev: Device, wallS: number, cpuS: number, entriesBefore: number) {
  const mine = readLedger(out).entries.slice(entriesBefore);
  const overhead = makeEntry({
    stage: "run overhead",
    kind: "setup",
    wallS: Math.max(0, wallS - mine.reduce((a, e) => a + e.wallS, 0)),
    cpuS: Math.max(0, cpuS - mine.reduce((a, e) => a + e.cpuS, 0)),
    deviceKind: recipe.device.kind,
    device: dev,
    count: devicesPerRank(recipe),
    ranks: world().size,
    tokens: noTokens,
    flops: 0,
  });
  if (isMain()) appendEntry(out, overhead);
  return overhead.costUsd;
}

/** The recipe's devices are one machine's: the ranks launched on the same machine share them (and its bill). */
const devicesPerRank = (recipe: Recipe) => recipe.device.count / localRanks();

export function runRecipe(recipe: Recipe, options: RunOptions): RunResult {
  const t0 = performance.now(),
    cpuRun0 = process.cpuUsage(),
    out = options.outDir,
    opts = isMain() ? options : { ...options, quiet: true };
  checkRanksAgree(JSON.stringify(recipe, null, 2));
  prepareDir(out, recipe, opts.resume);
  const entriesBefore = readLedger(out).entries.length;
  const prices = loadPrices(opts.prices),
    dev = lookupDevice(prices, recipe.device.kind);
  const usdPerS = (dev.usdPerHour * devicesPerRank(recipe) * world().size) / 3600;
  // the forecast's calibration costs up to ~20 s of device time; a cap smaller than that skips it
  const forecastFits = opts.budgetUsd === undefined || opts.budgetUsd > 20 * usdPerS;
  const forecast = opts.noForecast || !forecastFits ? null : forecastOnce(recipe, out, prices, dev, opts);
  releasePool(); // the calibration's buffers, sized for every stage's shapes, are not the next stage's
  const closed = readLedger(out).entries.reduce((a, e) => a + e.costUsd, 0),
    spend = new Spend(closed, usdPerS, opts.budgetUsd);
  const stages: StageSummary[] = [];
  let stopped: string | null = null;
  for (const s of recipe.stages) {
    const r = runStage(s, recipe, out, dev, opts, spend, forecast);
    releasePool();
    if ("stopped" in r) {
      stopped = r.stopped;
      break;
    }
    stages.push(r.summary);
  }
  const add = (usd: number) => (spend.closedUsd += usd);
  const evals = stopped ? [] : runEvals(recipe, out, dev, opts, add);
  const safety = stopped ? null : runSafetyEval(recipe, out, dev, evals, opts, add);
  const wallS = (performance.now() - t0) / 1000,
    cpuRun = process.cpuUsage(cpuRun0);
  spend.closedUsd += billOverhead(out, recipe, dev, wallS, (cpuRun.user + cpuRun.system) / 1e6, entriesBefore);
  if (isMain())
    writeFileAtomic(
      join(out, "run.json"),
      JSON.stringify({ wallS, stopped, ranks: world().size, finishedAt: new Date().toISOString() }),
    );
  return { stopped, evals, safety, wallS, totalUsd: spend.closedUsd, stages };
}

const noTokens = { prompt: 0, generated: 0, trained: 0 };

/** The safety report (safety.json in the run directory), once per run, billed as an eval entry. */
function runSafetyEval(
  recipe: Recipe,
  out: string,
  dev: Device,
  evals: EvalRow[],
  opts: RunOptions,
  add: (usd: number) => void,
): SafetyReport | null {
  const se = recipe.safetyEval;
  if (!se) return null;
  const f = join(out, "safety.json");
  if (fromMain(existsSync(f))) return JSON.parse(readFileSync(f, "utf8")) as SafetyReport;
  const t0 = performance.now(),
    cpu0 = usageNow();
  const modelDir = join(stageDir(out, se.model), "checkpoint"),
    t = loadModelDir(modelDir),
    guard = loadGuard(isHfInput(se.guard) ? se.guard : join(stageDir(out, se.guard), "checkpoint"));
  const m = evals.find((e) => e.stage === se.model),
    b = evals.find((e) => e.stage === se.baseline);
  const bar = progress(`safety-eval:${se.model}`, { quiet: !!opts.quiet, unit: "prompt" });
  const report = safetyEval(t.model, t.tokenizer, {
    progress: (done, total) => bar.update(done, total, ""),
    promptChars: se.promptChars,
    maxBenign: se.maxBenign,
    maxPerSet: se.maxPerSet,
    maxNewTokens: se.maxNewTokens,
    guard,
    steering: steeringFor(modelDir, guard),
    capabilityDelta: m && b ? m.pass1 - b.pass1 : null,
  });
  bar.stop();
  const entry = record(out, recipe, dev, `safety-eval:${se.model}`, "eval", t0, cpu0, {});
  add(entry.costUsd);
  if (isMain()) writeFileAtomic(f, JSON.stringify(report));
  if (!opts.quiet)
    console.log(
      `safety eval ${se.model}: harmful refused ${(100 * report.harmfulRefusalRate).toFixed(1)}%, benign refused ${(100 * report.benignRefusalRate).toFixed(1)}% (${entry.wallS.toFixed(1)} s)`,
    );
  return report;
}

/** CPU time and time in collectives so far: where a ledger entry's work starts (with performance.now()). */
const usageNow = () => ({ ...process.cpuUsage(), commMs: commMilliseconds() });

/**
 * The ledger entry of work that started at (t0, cpu0): measured wall, CPU and collective time, priced; rank 0
 * appends it.
 */
function record(
  out: string,
  recipe: Recipe,
  dev: Device,
  stage: string,
  kind: LedgerEntry["kind"],
  t0: number,
  cpu0: ReturnType<typeof usageNow>,
  facts: Partial<Pick<Parameters<typeof makeEntry>[0], "tokens" | "flops" | "forecastS" | "stopped" | "config">>,
): LedgerEntry {
  const cpu = process.cpuUsage(cpu0);
  const entry = makeEntry({
    stage,
    kind,
    wallS: (performance.now() - t0) / 1000,
    cpuS: (cpu.user + cpu.system) / 1e6,
    deviceKind: recipe.device.kind,
    device: dev,
    count: devicesPerRank(recipe),
    ranks: world().size,
    commS: (commMilliseconds() - cpu0.commMs) / 1000,
    tokens: noTokens,
    flops: 0,
    ...facts,
  });
  if (isMain()) appendEntry(out, entry);
  return entry;
}

/**
 * The forecast is made once per run (before its first stage) and billed as a setup entry. Every rank takes part
 * (they share the calibration); rank 0 keeps it, the others get null.
 */
function forecastOnce(recipe: Recipe, out: string, prices: PriceTable, dev: Device, opts: RunOptions): Forecast | null {
  const f = join(out, "forecast.json");
  if (fromMain(existsSync(f))) return isMain() ? (JSON.parse(readFileSync(f, "utf8")) as Forecast) : null;
  const t0 = performance.now(),
    cpu0 = usageNow();
  // ranks launched on one machine share its devices, as in the bill
  const here = { ...recipe, device: { ...recipe.device, count: devicesPerRank(recipe) } };
  const fc = forecastRecipe(here, prices, undefined, { ranks: world().size, fit: loadAllreduceFit() });
  const { wallS } = record(out, recipe, dev, "forecast", "setup", t0, cpu0, {});
  if (!isMain()) return null;
  writeFileAtomic(f, JSON.stringify(fc));
  if (!opts.quiet)
    console.log(
      `forecast: ${(fc.totalSeconds / 60).toFixed(1)} min on ${(fc.ranks ?? 1) > 1 ? `${fc.ranks} ranks × ` : ""}${fc.count}×${fc.device}, $${fc.costUsd.toFixed(4)} (calibrated in ${wallS.toFixed(1)} s)`,
    );
  return fc;
}

function runEvals(recipe: Recipe, out: string, dev: Device, opts: RunOptions, add: (usd: number) => void): EvalRow[] {
  const ev = recipe.eval;
  if (!ev) return [];
  const task = getTask(ev.task),
    rows: EvalRow[] = [];
  const fromFile = ev.problems
    ? readProblemFile(resolve(repoRoot, ev.problems), task).slice(0, ev.nProblems)
    : undefined;
  for (const s of recipe.stages) {
    if (!kindOf(s).evaluated || (ev.stages && !ev.stages.includes(s.name))) continue;
    const f = join(stageDir(out, s.name), "eval.json");
    if (fromMain(existsSync(f))) {
      rows.push(JSON.parse(readFileSync(f, "utf8")) as EvalRow);
      continue;
    }
    const t0 = performance.now(),
      cpu0 = usageNow();
    const t = loadModelDir(join(stageDir(out, s.name), "checkpoint"));
    const bar = progress(`eval:${s.name}`, { quiet: !!opts.quiet, unit: "sample" });
    const report = evaluate(t.model, t.tokenizer, task, {
      progress: (done, total) => bar.update(done, total, ""),
      nProblems: ev.nProblems,
      problems: fromFile,
      greedy: ev.greedy,
      k: ev.k,
      temperature: ev.temperature,
      topP: ev.topP,
      maxNewTokens: ev.maxNewTokens,
      difficulties: ev.difficulties,
      seed: recipe.seed,
      calculator: ev.calculator,
      kvBf16: ev.kvCacheBf16,
    });
    bar.stop();
    const entry = record(out, recipe, dev, `eval:${s.name}`, "eval", t0, cpu0, {
      tokens: { ...noTokens, generated: report.generatedTokens },
    });
    const wallS = entry.wallS;
    add(entry.costUsd);
    const row: EvalRow = {
      stage: s.name,
      pass1: report.pass1,
      greedyAccuracy: report.greedyAccuracy,
      formatRate: report.formatRate,
      meanLength: report.meanLength,
      evalWallS: wallS,
      report,
    };
    if (isMain()) writeFileAtomic(f, JSON.stringify(row));
    rows.push(row);
    if (!opts.quiet) console.log(`eval ${s.name}: pass@1 ${(100 * report.pass1).toFixed(1)}% (${wallS.toFixed(1)} s)`);
  }
  return rows;
}
