// The ledger: one append-only JSONL file per run; every stage (and every evaluation) appends the facts it
// measured — wall and CPU seconds, device kind and count, MPI ranks and their time in collectives, tokens,
// analytic FLOPs — and the dollars that follow from measured time × devices × ranks × price. Reading skips
// exactly the damaged lines (a crash mid-write) and says so.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Device } from "./prices.js";

export interface LedgerEntry {
  ts: string;
  stage: string;
  kind: "train" | "eval" | "setup";
  wallS: number;
  cpuS: number;
  device: string;
  count: number;
  /** MPI ranks, each holding `count` devices (1 without MPI) */
  ranks?: number;
  /** seconds this rank spent in collectives (all-reduce, gather), waiting for slower ranks included */
  commS?: number;
  tokens: { prompt: number; generated: number; trained: number };
  flops: number;
  achievedFlops: number;
  utilisation: number;
  deviceHours: number;
  costUsd: number;
  usdPerHour: number;
  forecastS?: number;
  stopped?: string | null;
  config?: unknown;
}

export const ledgerFile = (runDir: string) => join(runDir, "ledger.jsonl");

export function makeEntry(e: {
  stage: string;
  kind: LedgerEntry["kind"];
  wallS: number;
  cpuS: number;
  deviceKind: string;
  device: Device;
  count: number;
  ranks?: number;
  commS?: number;
  tokens: LedgerEntry["tokens"];
  flops: number;
  forecastS?: number;
  stopped?: string | null;
  config?: unknown;
}): LedgerEntry {
  const units = e.count * (e.ranks ?? 1),
    deviceHours = (e.wallS / 3600) * units;
  const achieved = e.wallS > 0 ? e.flops / e.wallS : 0;
  return {
    ts: new Date().toISOString(),
    stage: e.stage,
    kind: e.kind,
    wallS: e.wallS,
    cpuS: e.cpuS,
    device: e.deviceKind,
    count: e.count,
    ranks: e.ranks ?? 1,
    commS: e.commS ?? 0,
    tokens: e.tokens,
    flops: e.flops,
    achievedFlops: achieved,
    utilisation: achieved / (e.device.peakFlops * units),
    deviceHours,
    costUsd: deviceHours * e.device.usdPerHour,
    usdPerHour: e.device.usdPerHour,
    forecastS: e.forecastS,
    stopped: e.stopped ?? null,
    config: e.config,
  };
}

export function appendEntry(runDir: string, e: LedgerEntry): void {
  appendFileSync(ledgerFile(runDir), JSON.stringify(e) + "\n");
}

const REQUIRED = ["stage", "kind", "wallS", "deviceHours", "costUsd"] as const;

/** Entries of a run's ledger; damaged lines are skipped and reported with their line numbers. */
export function readLedger(runDir: string): { entries: LedgerEntry[]; skipped: { line: number; reason: string }[] } {
  const f = ledgerFile(runDir);
  if (!existsSync(f)) return { entries: [], skipped: [] };
  const entries: LedgerEntry[] = [],
    skipped: { line: number; reason: string }[] = [];
  readFileSync(f, "utf8")
    .split("\n")
    .forEach((l, i) => {
      if (!l.trim()) return;
      try {
        const e = JSON.parse(l) as LedgerEntry;
        const missing = REQUIRED.filter(
          (k) => e[k] === undefined || (typeof e[k] === "number" && !Number.isFinite(e[k] as number)),
        );
        if (missing.length) skipped.push({ line: i + 1, reason: `missing ${missing.join(", ")}` });
        else entries.push(e);
      } catch {
        skipped.push({ line: i + 1, reason: "not valid JSON (truncated write?)" });
      }
    });
  return { entries, skipped };
}
