// Small statistics shared by the benchmarks and the forecast: the median of timings.
// No sampling or intervals here (the safety report's bootstrap lives in safety/report.ts).
import { internal } from "./errors.js";

/** The upper median of a non-empty list (the middle value; of an even count, the larger middle one). */
export function median(xs: readonly number[]): number {
  if (!xs.length) throw internal("median of an empty list");
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}
