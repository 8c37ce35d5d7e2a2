// What every stage kind provides to the recipe, the runner and the forecast: its config schema, the earlier
// stages it reads, how it runs, and how long it will take. One module per kind implements this; the
// registry (index.ts) lists them. No stage logic here.
import type { z } from "zod";
import type { Calibration, StageForecast } from "../../cost/forecast.js";
import type { ModelConfig } from "../../model/config.js";
import type { LoopOutcome, StageIO } from "../../train/loop.js";

export interface StageEnv {
  /** checkpoint directory of an earlier stage */
  checkpointOf(stage: string): string;
}

/** What a stage run tells the runner; the model it trains is handed on through its checkpoint folder. */
export type StageOutcome = LoopOutcome & { notes?: Record<string, number> };

/** What the forecast of one stage may read: the recipe's earlier stages and the machine's measured speeds. */
export interface ForecastContext {
  seed: number;
  /** every stage of the recipe (a stage may read an earlier one's settings, e.g. the guard's members) */
  stages: readonly { name: string; type: string; members?: number }[];
  /** the model each earlier stage hands on, by stage name */
  configs: Map<string, ModelConfig>;
  /** the stages whose model is a merged ensemble, by name: how many members (its layers run in blocks) */
  members: Map<string, number>;
  calibration: Calibration;
  /** MPI ranks the run is forecast on (default 1); a stage whose dataParallel is "units" splits its work itself */
  ranks?: number;
}

export interface StageKind<S extends { type: string; name: string }> {
  type: S["type"];
  schema: z.ZodType<S, unknown>;
  /** earlier stages this one reads (checked by the recipe: each must come before it) */
  inputs(s: S): string[];
  /** whether the recipe's eval evaluates its checkpoint on the task (a guard is not a policy) */
  evaluated: boolean;
  /**
   * whether MPI ranks split its batches (and all-reduce its gradients), split its units of work whole between them
   * ("units": its forecast divides by ctx.ranks itself), or each rank runs all of it; per stage when a function
   */
  dataParallel: boolean | "units" | ((s: S) => boolean | "units");
  run(s: S, io: StageIO, env: StageEnv): StageOutcome;
  /** seconds and FLOPs on this machine; also records in ctx.configs the model the stage hands on */
  forecast(s: S, ctx: ForecastContext): StageForecast;
}
