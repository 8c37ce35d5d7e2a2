// The forecast's arithmetic: a calibration of this engine on this machine (timed training steps at a shape,
// and sampling tokens/s, each measured once and cached), and the sum of stage forecasts priced on the recipe's
// device and projected by FLOPs onto other hardware at a stated utilisation. What a stage costs in steps,
// batches and tokens is each stage kind's own forecast (pipeline/stages/); this file knows no stage.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Rng } from "../common/rng.js";
import { median } from "../common/stats.js";
import { allgather, barrier, world } from "../engine/dist.js";
import type { ModelConfig } from "../model/config.js";
import { Decoder, defaultSampleOptions } from "../model/sampler.js";
import { initModel, type Model } from "../model/transformer.js";
import { memberConfig, mergeModels } from "../model/surgery.js";
import { timeTrainSteps } from "../train/timing.js";
import { device as lookup, type PriceTable } from "./prices.js";

export interface StageForecast {
  name: string;
  seconds: number;
  flops: number;
  detail: string;
}
export interface Forecast {
  stages: StageForecast[];
  evalSeconds: number;
  totalSeconds: number;
  costUsd: number;
  device: string;
  count: number;
  /** MPI ranks, each with `count` devices */
  ranks?: number;
  projection?: { device: string; count: number; utilisation: number; seconds: number; costUsd: number };
}

/** Where decoding is timed: the model's members (a merged ensemble), the mean position, the KV cache type. */
export interface DecodeAt {
  members?: number;
  at?: number;
  kvBf16?: boolean;
}

/** Measured speeds of this engine on this machine, once per model shape (and batch shape for training). */
export class Calibration {
  private cache = new Map<string, number>();
  /** while collecting (see shared): the measurements asked for, not taken; `of` answers 1 for them meanwhile */
  private wanted: Map<string, () => number> | null = null;

  /**
   * Runs `use` with a calibration the ranks measure together: a first pass of `use` only collects what it asks
   * for, every rank then measures every shape at the same moment (a barrier before each), as they will train side
   * by side, and a second pass runs on the ranks' mean. Every rank must call it. On one rank it measures as `use`
   * asks. (Split between ranks, a measurement ran beside another shape's and moved by up to 2×.)
   */
  static shared<T>(use: (c: Calibration) => T): T {
    const c = new Calibration();
    if (world().size <= 1) return use(c);
    c.wanted = new Map();
    use(c);
    const wanted = [...c.wanted]; // the same order on every rank: each ran the same first pass
    c.wanted = null;
    const mine = wanted.map(([, measure]) => {
      barrier();
      return measure();
    });
    const all = allgather(mine);
    wanted.forEach(([key], i) => c.cache.set(key, all.reduce((a, r) => a + r[i]!, 0) / all.length));
    return use(c);
  }

  /**
   * Seconds per training step at (B, T), measured now (decoding speed: tokPerS). A step is timed on at most
   * `chunk` rows (default 32) and scaled to B: time grows with rows, memory too.
   */
  of(config: ModelConfig, B: number, T: number, chunk = 32, members = 1): { stepS: number } {
    const rows = Math.max(1, Math.min(B, chunk)),
      k = `${JSON.stringify(config)}|${members}|${rows}|${T}`;
    const seq = Math.min(config.max_position_embeddings, Math.max(2, Math.round(T)));
    this.need(k, () => median(timeTrainSteps(config, rows, seq, 3, timedModel(config, members))) / 1000);
    return { stepS: ((this.cache.get(k) ?? 1) * B) / rows };
  }

  /**
   * Generated tokens per second at batch 32, measured now, around position `at` (decoding slows as the context
   * grows: attention reads every cached position) and with the KV cache the sampler will use; no training step
   * is timed.
   */
  tokPerS(config: ModelConfig, o: DecodeAt = {}): number {
    return this.decodeSpeed(config, o, 32);
  }

  /**
   * A decoding step's cost as a fixed part and a part per row, from timings at 32 rows and at 4 (see tokPerS):
   * a batch whose rows all start together runs as many steps as its longest row, and its last steps decode few
   * rows, each paying the fixed part alone.
   */
  decodeStep(config: ModelConfig, o: DecodeAt = {}): { stepS: number; rowS: number } {
    return stepCost(32 / this.decodeSpeed(config, o, 32), 4 / this.decodeSpeed(config, o, 4));
  }

  private decodeSpeed(config: ModelConfig, o: DecodeAt, rows: number): number {
    const members = o.members ?? 1,
      prefix = decodePrefix(config, o.at ?? 0),
      kvBf16 = o.kvBf16 ?? false;
    const g = `${JSON.stringify(config)}|${members}|gen${rows}|${prefix}|${kvBf16}`;
    this.need(g, () => generationSpeed(config, members, prefix, kvBf16, rows));
    return this.cache.get(g) ?? 1;
  }

  private need(key: string, measure: () => number): void {
    if (this.cache.has(key)) return;
    if (this.wanted) {
      if (!this.wanted.has(key)) this.wanted.set(key, measure);
    } else this.cache.set(key, measure());
  }
}

/**
 * A decoding step's fixed part and part per row from a step's seconds at 32 rows and at 4: the line through
 * both, neither part below 0 (timing noise can tilt it).
 */
export function stepCost(at32S: number, at4S: number): { stepS: number; rowS: number } {
  const rowS = Math.max(0, (at32S - at4S) / 28);
  return { stepS: Math.max(0, at32S - 32 * rowS), rowS };
}

/** New tokens one timed decoding batch decodes (fewer where the context is shorter). */
const TIMED_TOKENS = 48;

/** Timed decoding runs TIMED_TOKENS past a prefix of this many positions (a multiple of 16), centred on `at`. */
export function decodePrefix(config: ModelConfig, at: number): number {
  const most = Math.max(1, config.max_position_embeddings - TIMED_TOKENS - 1);
  return Math.min(most, Math.max(12, Math.round((at - TIMED_TOKENS / 2) / 16) * 16));
}

/**
 * Tokens per second decoding TIMED_TOKENS new tokens (fewer in a shorter context) past prompts of `prefix` random tokens,
 * `rows` at a time, the prefill not timed: the median of four batches, after one warm-up batch (JIT, first touch of
 * the KV cache; a cold first call ran 4× slower than steady state).
 */
function generationSpeed(config: ModelConfig, members: number, prefix: number, kvBf16: boolean, rows: number): number {
  const model = timedModel(config, members),
    rng = new Rng(1),
    newTokens = Math.max(1, Math.min(TIMED_TOKENS, config.max_position_embeddings - prefix - 1)),
    opts = { ...defaultSampleOptions, maxNewTokens: newTokens + 1 };
  const batch = (b: number): number => {
    const dec = new Decoder(model, rows, prefix + newTokens + 1, true, kvBf16);
    const prompts = Array.from({ length: rows }, () =>
      Array.from({ length: prefix }, () => rng.int(9, config.vocab_size - 1)),
    );
    dec.addMany(prompts.map((prompt, i) => ({ prompt, opts, seed: rows * b + i })));
    let tokens = 0;
    const t0 = performance.now();
    for (let step = 0; step < newTokens && dec.active > 0; step++) {
      tokens += dec.active;
      dec.step();
    }
    return tokens / Math.max(1e-3, (performance.now() - t0) / 1000);
  };
  batch(0);
  return median([1, 2, 3, 4].map(batch));
}

/**
 * A fresh model of this shape to time; for a merged ensemble of n members (its projections run in blocks,
 * blocks.ts), n fresh members merged, without any bias channel's silent heads (a few dims' worth).
 */
function timedModel(config: ModelConfig, members: number): Model {
  if (members <= 1) return initModel(config, 1);
  const member = memberConfig(config, members);
  return mergeModels(Array.from({ length: members }, (_, m) => initModel(member, 1 + m)));
}

/** The run's total on its own device, and optionally the same FLOPs on another device at a utilisation. */
export function priceForecast(
  stages: StageForecast[],
  evalSeconds: number,
  prices: PriceTable,
  here: { kind: string; count: number; ranks?: number },
  project?: { device: string; count: number; utilisation: number },
): Forecast {
  const dev = lookup(prices, here.kind);
  const totalSeconds = stages.reduce((a, s) => a + s.seconds, 0) + evalSeconds;
  const ranks = here.ranks ?? 1,
    costUsd = (totalSeconds / 3600) * dev.usdPerHour * here.count * ranks;
  const f: Forecast = { stages, evalSeconds, totalSeconds, costUsd, device: here.kind, count: here.count, ranks };
  if (project) {
    const d = lookup(prices, project.device),
      flops = stages.reduce((a, s) => a + s.flops, 0);
    const seconds = flops / (d.peakFlops * project.count * project.utilisation);
    f.projection = { ...project, seconds, costUsd: (seconds / 3600) * d.usdPerHour * project.count };
  }
  return f;
}

/** An all-reduce's cost over one transport: ms = latencyMs per hop + bytes / (gbPerS · 1e6). */
export interface AllreduceFit {
  latencyMs: number;
  gbPerS: number;
  measuredOn?: string;
}
/** 10 Gb/s Ethernet with ~50 µs per hop: the assumption used where nothing was measured. */
export const TEN_GBE: AllreduceFit = { latencyMs: 0.05, gbPerS: 1.25, measuredOn: "assumed: 10 Gb/s Ethernet" };

/** A ring all-reduce of `bytes` over `ranks` ranks: 2(N−1) hops' latency shared in two phases, 2(N−1)/N of the bytes. */
export function allreduceModelMs(fit: AllreduceFit, bytes: number, ranks: number): number {
  if (ranks <= 1) return 0;
  return (ranks - 1) * fit.latencyMs + (2 * (ranks - 1) * bytes) / ranks / (fit.gbPerS * 1e6);
}

const fitFile = () => join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "frugal", "allreduce.json");

/** Keeps the all-reduce cost `frugal bench mpi` measured, for `frugal forecast --ranks`. */
export function saveAllreduceFit(fit: AllreduceFit): void {
  try {
    mkdirSync(dirname(fitFile()), { recursive: true });
    writeFileSync(fitFile(), JSON.stringify(fit));
  } catch {
    /* a read-only home: the forecast falls back to the stated assumption */
  }
}

/** The measured all-reduce cost, or TEN_GBE when `frugal bench mpi` has not run on this machine. */
export function loadAllreduceFit(): AllreduceFit {
  try {
    const f = JSON.parse(readFileSync(fitFile(), "utf8")) as AllreduceFit;
    if (f.latencyMs >= 0 && f.gbPerS > 0) return f;
  } catch {
    /* none measured */
  }
  return TEN_GBE;
}
