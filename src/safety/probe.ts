// The probe set (probe.json): hand-written prompts that no training list draws from and nothing is tuned
// on — natural harmful questions per hazard, benign look-alikes and ordinary questions. Reported beside
// the hash-split held-out sets as a check that the guard and the safe model learned harm, not our lists.
// Loading and validation only.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import type { SafetyItem } from "./data.js";

const ProbeSchema = z.object({
  $comment: z.string(),
  harmful: z.array(z.object({ text: z.string().min(1), hazard: z.string().regex(/^S\d+$/) }).strict()).min(1),
  lookalikes: z.array(z.string().min(1)).min(1),
  ordinary: z.array(z.string().min(1)).min(1),
}).strict();

export interface ProbeSets { probeHarmful: SafetyItem[]; probeLookalikes: SafetyItem[]; probeOrdinary: SafetyItem[] }

const file = join(dirname(fileURLToPath(import.meta.url)), "../../src/safety/probe.json");
let cached: ProbeSets | null = null;

export function probeSets(): ProbeSets {
  if (cached) return cached;
  const p = ProbeSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!p.success) throw new FrugalError("internal", `internal: ${file} does not match its schema: ${p.error.issues[0]?.message}`);
  const benign = (kind: string) => (text: string): SafetyItem => ({ text, unsafe: false, hazard: null, kind });
  return (cached = {
    probeHarmful: p.data.harmful.map((x) => ({ text: x.text, unsafe: true, hazard: x.hazard, kind: "probe-harmful" })),
    probeLookalikes: p.data.lookalikes.map(benign("probe-lookalike")),
    probeOrdinary: p.data.ordinary.map(benign("probe-ordinary")),
  });
}
