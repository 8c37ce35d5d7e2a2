// The bill: a run's ledger folded into DeepSeek's table shape (stage, device-hours, $) with totals, tokens,
// utilisation and, where a forecast was made, forecast vs actual; and DeepSeek-R1's own published table
// rebuilt from its GPU-hours and price, to read side by side. Pure functions over ledger entries.
import { FrugalError } from "../common/errors.js";
import type { LedgerEntry } from "./ledger.js";

export interface BillStage {
  name: string;
  kind: string;
  device: string;
  count: number;
  /** MPI ranks (each with `count` devices) and seconds rank 0 spent in collectives */
  ranks: number;
  commS: number;
  wallS: number;
  deviceHours: number;
  costUsd: number;
  tokens: LedgerEntry["tokens"];
  flops: number;
  utilisation: number;
  forecastS?: number;
  stopped?: string | null;
}
export interface Bill {
  stages: BillStage[];
  totalUsd: number;
  totalDeviceHours: number;
  totalWallS: number;
  runWallS?: number;
  skipped: { line: number; reason: string }[];
  note?: string;
}

export function makeBill(entries: LedgerEntry[], skipped: Bill["skipped"] = [], runWallS?: number): Bill {
  const stages: BillStage[] = entries.map((e) => ({
    name: e.stage,
    kind: e.kind,
    device: e.device,
    count: e.count,
    ranks: e.ranks ?? 1,
    commS: e.commS ?? 0,
    wallS: e.wallS,
    deviceHours: e.deviceHours,
    costUsd: e.costUsd,
    tokens: e.tokens,
    flops: e.flops,
    utilisation: e.utilisation,
    forecastS: e.forecastS,
    stopped: e.stopped,
  }));
  const sum = (f: (s: BillStage) => number) => stages.reduce((a, s) => a + f(s), 0);
  return {
    stages,
    totalUsd: sum((s) => s.costUsd),
    totalDeviceHours: sum((s) => s.deviceHours),
    totalWallS: sum((s) => s.wallS),
    runWallS,
    skipped,
  };
}

/** DeepSeek-R1's published training cost (Nature 2025, supplementary): H800 GPU-hours at $2/hour. */
export const DEEPSEEK_R1 = [
  { name: "DeepSeek-R1-Zero", gpuHours: 101_000 },
  { name: "SFT data creation", gpuHours: 5_000 },
  { name: "DeepSeek-R1", gpuHours: 41_000 },
] as const;

export function exampleBill(name: string): Bill {
  if (name !== "deepseek-r1") throw new FrugalError("ARG", `unknown example "${name}"; available: deepseek-r1`);
  const stages: BillStage[] = DEEPSEEK_R1.map((s) => ({
    name: s.name,
    kind: "train",
    device: "h800",
    count: 512,
    ranks: 1,
    commS: 0,
    wallS: (s.gpuHours / 512) * 3600,
    deviceHours: s.gpuHours,
    costUsd: s.gpuHours * 2,
    tokens: { prompt: 0, generated: 0, trained: 0 },
    flops: 0,
    utilisation: NaN,
  }));
  return {
    ...makeBill([]),
    stages,
    totalUsd: stages.reduce((a, s) => a + s.costUsd, 0),
    totalDeviceHours: stages.reduce((a, s) => a + s.deviceHours, 0),
    totalWallS: stages.reduce((a, s) => a + s.wallS, 0),
    note: "From DeepSeek's published GPU-hours (512 H800s, $2 per GPU-hour); tokens and utilisation were not published.",
  };
}

const money = (x: number) =>
  x >= 100 ? `$${Math.round(x).toLocaleString("en-US")}` : x >= 0.01 ? `$${x.toFixed(2)}` : `$${x.toFixed(6)}`;
const hours = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(x >= 1 ? 2 : 5));
const count = (x: number) =>
  x >= 1e9
    ? `${(x / 1e9).toFixed(2)}G`
    : x >= 1e6
      ? `${(x / 1e6).toFixed(2)}M`
      : x >= 1e3
        ? `${(x / 1e3).toFixed(1)}k`
        : String(Math.round(x));

export function renderBill(b: Bill): string {
  const lines = [
    "stage                 device        device-hours          cost    wall (s)    tokens (gen/train)   util.   forecast",
  ];
  for (const s of b.stages) {
    const fc = s.forecastS ? `${s.forecastS.toFixed(0)} s (${((s.wallS / s.forecastS - 1) * 100).toFixed(0)}%)` : "";
    lines.push(
      `${s.name.padEnd(21)} ${`${s.ranks > 1 ? `${s.ranks}×` : ""}${s.count}×${s.device}`.padEnd(13)} ${hours(s.deviceHours).padStart(12)} ${money(s.costUsd).padStart(13)} ${s.wallS.toFixed(1).padStart(11)} ${`${count(s.tokens.generated)}/${count(s.tokens.trained)}`.padStart(20)} ${Number.isFinite(s.utilisation) ? `${(100 * s.utilisation).toFixed(1)}%` : "—".padStart(5)}   ${fc}${s.stopped ? "  (stopped: budget)" : ""}`,
    );
  }
  lines.push(
    `${"total".padEnd(35)} ${hours(b.totalDeviceHours).padStart(12)} ${money(b.totalUsd).padStart(13)} ${b.totalWallS.toFixed(1).padStart(11)}`,
  );
  if (b.runWallS)
    lines.push(
      `measured run wall time ${b.runWallS.toFixed(1)} s; ledger stages cover ${((100 * b.totalWallS) / b.runWallS).toFixed(1)}% of it`,
    );
  const ranks = Math.max(...b.stages.map((s) => s.ranks)),
    commS = b.stages.reduce((a, s) => a + s.commS, 0);
  if (ranks > 1)
    lines.push(
      `${ranks} MPI ranks: device-hours count every rank; ${commS.toFixed(1)} s of rank 0's wall time was in collectives (all-reduce, gathers, waiting)`,
    );
  if (b.note) lines.push(b.note);
  for (const s of b.skipped) lines.push(`warning: ledger line ${s.line} skipped (${s.reason})`);
  return lines.join("\n");
}
