// The price table: device kinds with $/hour per unit, peak FLOP/s and the source and date of each price.
// Validated on load (a missing or negative price is an error naming the device); users can merge their
// own file over the built-in one. Dollars elsewhere are always measured time × these prices.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";

export const DeviceSchema = z
  .object({
    label: z.string(),
    usdPerHour: z.number().nonnegative(),
    peakFlops: z.number().positive(),
    precision: z.string(),
    source: z.string().min(1),
    date: z.string().min(1),
  })
  .strict();
export type Device = z.infer<typeof DeviceSchema>;
const TableSchema = z.object({ $comment: z.string().optional(), devices: z.record(z.string(), DeviceSchema) }).strict();
export type PriceTable = Record<string, Device>;

const builtin = join(dirname(fileURLToPath(import.meta.url)), "../../src/cost/prices.json");

export function parsePriceTable(raw: unknown, source: string): PriceTable {
  const p = TableSchema.safeParse(raw);
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw new FrugalError(
      "PRICES",
      `${source}: ${i.path.join(".")}: ${i.message}. Each device needs label, usdPerHour (≥ 0), peakFlops, precision, source and date.`,
    );
  }
  return p.data.devices;
}

/** The built-in table, with an optional user file merged over it. */
export function loadPrices(userFile?: string): PriceTable {
  const read = (f: string) => {
    try {
      return JSON.parse(readFileSync(f, "utf8")) as unknown;
    } catch (e) {
      throw new FrugalError("PRICES", `cannot read price table ${f}: ${(e as Error).message}`);
    }
  };
  const table = parsePriceTable(read(builtin), builtin);
  return userFile ? { ...table, ...parsePriceTable(read(userFile), userFile) } : table;
}

export function device(table: PriceTable, kind: string): Device {
  const d = table[kind];
  if (!d)
    throw new FrugalError(
      "PRICES",
      `unknown device kind "${kind}"; known: ${Object.keys(table).join(", ")} (add your own with --prices FILE)`,
    );
  return d;
}
