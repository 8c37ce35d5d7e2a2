// The registry of stage kinds: the recipe's stage schema is the union of theirs, and the runner and the
// forecast look a stage's kind up here instead of switching on its type. A new kind is one module + one line.
import { z } from "zod";
import { internal } from "../../common/errors.js";
import { distill, Distill } from "./distill.js";
import { grpo, Grpo } from "./grpo.js";
import { guard, GuardStage } from "./guard.js";
import type { StageKind } from "./kind.js";
import { pretrain, Pretrain } from "./pretrain.js";
import { rejectionSft, RejectionSft } from "./rejection-sft.js";
import { safetyGrpo, SafetyGrpo } from "./safety-grpo.js";
import { safetySft, SafetySft } from "./safety-sft.js";
import { sft, Sft } from "./sft.js";

export const StageSchema = z.discriminatedUnion("type", [
  Pretrain,
  Sft,
  Grpo,
  RejectionSft,
  Distill,
  GuardStage,
  SafetySft,
  SafetyGrpo,
]);
export type StageConfig = z.infer<typeof StageSchema>;

const KINDS: { [T in StageConfig["type"]]: StageKind<Extract<StageConfig, { type: T }>> } = {
  pretrain,
  sft,
  grpo,
  "rejection-sft": rejectionSft,
  distill,
  guard,
  "safety-sft": safetySft,
  "safety-grpo": safetyGrpo,
};

/** The kind of a validated stage config. */
export function kindOf<S extends StageConfig>(s: S): StageKind<S> {
  const k = KINDS[s.type] as unknown as StageKind<S> | undefined;
  if (!k) throw internal(`no stage kind "${s.type}" in the registry`);
  return k;
}

export type { ForecastContext, StageEnv, StageKind, StageOutcome } from "./kind.js";
