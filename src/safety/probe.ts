// The probe set (probe.json): hand-written prompts that no training list draws from and nothing is tuned
// on — natural harmful questions per hazard, benign look-alikes and ordinary questions. Reported beside
// the hash-split held-out sets as a check that the guard and the safe model learned harm, not our lists.
// Loading and validation only.
import { z } from "zod";
import { readShippedJson } from "../common/shipped.js";
import type { SafetyItem } from "./corpus.js";

const ProbeSchema = z
  .object({
    $comment: z.string(),
    harmful: z.array(z.object({ text: z.string().min(1), hazard: z.string().regex(/^S\d+$/) }).strict()).min(1),
    lookalikes: z.array(z.string().min(1)).min(1),
    ordinary: z.array(z.string().min(1)).min(1),
  })
  .strict();

export interface ProbeSets {
  probeHarmful: SafetyItem[];
  probeLookalikes: SafetyItem[];
  probeOrdinary: SafetyItem[];
}

let cached: ProbeSets | null = null;

export function probeSets(): ProbeSets {
  if (cached) return cached;
  const data = readShippedJson(new URL("../../src/safety/probe.json", import.meta.url), ProbeSchema);
  const benign =
    (kind: string) =>
    (text: string): SafetyItem => ({ text, unsafe: false, hazard: null, kind });
  return (cached = {
    probeHarmful: data.harmful.map((x) => ({ text: x.text, unsafe: true, hazard: x.hazard, kind: "probe-harmful" })),
    probeLookalikes: data.lookalikes.map(benign("probe-lookalike")),
    probeOrdinary: data.ordinary.map(benign("probe-ordinary")),
  });
}
