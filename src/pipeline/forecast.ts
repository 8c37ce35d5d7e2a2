// Forecast of a recipe's time and cost before running it: each stage kind's own forecast (its steps, batch
// and sequence lengths at speeds measured now on this machine), the evaluation's sampling, priced on the
// recipe's device by cost/forecast.ts and optionally projected onto other hardware by FLOPs; on N MPI ranks,
// data-parallel stages split N ways plus their gradient all-reduces (the cost `frugal bench mpi` measured).
import {
  allreduceModelMs,
  Calibration,
  priceForecast,
  type AllreduceFit,
  type Forecast,
  type StageForecast,
} from "../cost/forecast.js";
import { countParams } from "../model/config.js";
import { loraParamCount } from "../model/lora.js";
import type { PriceTable } from "../cost/prices.js";
import type { ModelConfig } from "../model/config.js";
import type { Recipe } from "./recipe.js";
import { kindOf, type ForecastContext } from "./stages/index.js";
import { sampledTraceLengths } from "./stages/shared.js";
import { hfConfig, isHfInput } from "./hf-input.js";

/** Data parallelism to forecast: ranks (machines like the recipe's device) and their all-reduce cost. */
export interface RanksForecast {
  ranks: number;
  fit: AllreduceFit;
}

/** Every rank of a run must call it: the ranks share its calibration's measurements (Calibration.shared). */
export function forecastRecipe(
  recipe: Recipe,
  prices: PriceTable,
  project?: { device: string; count: number; utilisation: number },
  dp?: RanksForecast,
): Forecast {
  return Calibration.shared((calibration) => forecastWith(recipe, prices, calibration, project, dp));
}

function forecastWith(
  recipe: Recipe,
  prices: PriceTable,
  calibration: Calibration,
  project?: { device: string; count: number; utilisation: number },
  dp?: RanksForecast,
): Forecast {
  const ctx: ForecastContext = {
    seed: recipe.seed,
    stages: recipe.stages,
    configs: new Map<string, ModelConfig>(),
    members: new Map(),
    calibration,
    ranks: dp?.ranks ?? 1,
  };
  for (const s of recipe.stages)
    for (const input of kindOf(s).inputs(s)) if (isHfInput(input)) ctx.configs.set(input, hfConfig(input, s.name));
  let stages = recipe.stages.map((s) => kindOf(s).forecast(s, ctx));
  if (dp && dp.ranks > 1) stages = stages.map((f, i) => onRanks(f, recipe.stages[i]!, ctx.configs, dp));
  let evalSeconds = 0;
  if (recipe.eval) {
    const ev = recipe.eval,
      L = sampledTraceLengths(ev.task, ev.difficulties);
    for (const s of recipe.stages) {
      if (!kindOf(s).evaluated || (ev.stages && !ev.stages.includes(s.name))) continue;
      const tokPerS = ctx.calibration.tokPerS(ctx.configs.get(s.name)!, {
        members: ctx.members.get(s.name),
        at: L.decodeAt,
        kvBf16: ev.kvCacheBf16,
      });
      evalSeconds += (ev.nProblems * (ev.k + 1) * L.completion) / tokPerS;
    }
  }
  if (dp && dp.ranks > 1) evalSeconds /= dp.ranks; // eval splits its samples across ranks
  return priceForecast(stages, evalSeconds, prices, { ...recipe.device, ranks: dp?.ranks ?? 1 }, project);
}

/**
 * A stage on N ranks: a data-parallel stage's compute split N ways plus one gradient all-reduce per step (of its
 * trainable parameters, fp32); a stage that every rank runs whole (the guard) takes as long as on one.
 */
function onRanks(
  f: StageForecast,
  s: Recipe["stages"][number],
  configs: Map<string, ModelConfig>,
  dp: RanksForecast,
): StageForecast {
  const config = configs.get(s.name);
  const dp0 = kindOf(s).dataParallel,
    split = typeof dp0 === "function" ? dp0(s) : dp0;
  if (split === "units") return f; // its own forecast split it
  if (!split || !config || !("steps" in s)) return { ...f, detail: `${f.detail}; every rank runs it` };
  const lora = "lora" in s ? s.lora : undefined,
    params = lora ? loraParamCount(config, lora) : countParams(config);
  const steps = s.steps * ("members" in s && s.members ? s.members : 1); // an ensemble trains each member in turn
  const commS = (steps * allreduceModelMs(dp.fit, 4 * params, dp.ranks)) / 1000;
  return {
    ...f,
    seconds: f.seconds / dp.ranks + commS,
    detail: `${f.detail}; ${dp.ranks} ranks, all-reduce ${commS.toFixed(commS < 10 ? 2 : 0)} s`,
  };
}
