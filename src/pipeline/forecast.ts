// Forecast of a recipe's time and cost before running it: each stage kind's own forecast (its steps, batch
// and sequence lengths at speeds measured now on this machine), the evaluation's sampling, priced on the
// recipe's device by cost/forecast.ts and optionally projected onto other hardware by FLOPs.
import { Calibration, priceForecast, type Forecast } from "../cost/forecast.js";
import type { PriceTable } from "../cost/prices.js";
import type { ModelConfig } from "../model/config.js";
import type { Recipe } from "./recipe.js";
import { kindOf, type ForecastContext } from "./stages/index.js";
import { traceLengths } from "./stages/shared.js";
import { hfConfig, isHfInput } from "./hf-input.js";

export function forecastRecipe(
  recipe: Recipe,
  prices: PriceTable,
  project?: { device: string; count: number; utilisation: number },
): Forecast {
  const ctx: ForecastContext = {
    seed: recipe.seed,
    stages: recipe.stages,
    configs: new Map<string, ModelConfig>(),
    calibration: new Calibration(),
  };
  for (const s of recipe.stages)
    for (const input of kindOf(s).inputs(s)) if (isHfInput(input)) ctx.configs.set(input, hfConfig(input, s.name));
  const stages = recipe.stages.map((s) => kindOf(s).forecast(s, ctx));
  let evalSeconds = 0;
  if (recipe.eval) {
    const ev = recipe.eval,
      L = traceLengths(ev.task, ev.difficulties);
    for (const s of recipe.stages) {
      if (!kindOf(s).evaluated || (ev.stages && !ev.stages.includes(s.name))) continue;
      const c = ctx.calibration.of(ctx.configs.get(s.name)!, 32, L.prompt + L.completion);
      evalSeconds += (ev.nProblems * (ev.k + 1) * L.completion) / c.tokPerS;
    }
  }
  return priceForecast(stages, evalSeconds, prices, recipe.device, project);
}
