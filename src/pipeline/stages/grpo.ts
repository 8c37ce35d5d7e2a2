// grpo: R1-Zero-style RL on a task with the rule reward (accuracy + format, 0.1 by default), from an earlier stage.
// The algorithm and its variants live in rl/; this module only wires the task's prompts to it.
import { z } from "zod";
import { loadModelDir } from "../../model/load.js";
import { GrpoConfig, trainGrpo, grpoSettings } from "../../rl/grpo.js";
import { getTask } from "../../tasks/index.js";
import type { StageKind } from "./kind.js";
import {
  difficultyList,
  formatWeight,
  grpoForecast,
  stageInput,
  stageName,
  sampledTraceLengths,
  taskSource,
} from "./shared.js";

export const Grpo = GrpoConfig.extend({
  type: z.literal("grpo"),
  name: stageName,
  from: stageInput,
  task: z.string(),
  difficulties: difficultyList,
  /** sample with the task's calculator (results written, legal moves only); its tokens are not trained */
  calculator: z.boolean().default(false),
  formatWeight,
})
  .strict()
  .refine((s) => !s.legalPolicy || (s.calculator && getTask(s.task).calculator), {
    message: "legalPolicy needs the task's calculator (its referee judges the moves): set calculator true on countdown",
    path: ["legalPolicy"],
  })
  .superRefine(grpoSettings);
export type Grpo = z.infer<typeof Grpo>;

export const grpo: StageKind<Grpo> = {
  type: "grpo",
  schema: Grpo,
  inputs: (s) => [s.from],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    const source = taskSource(getTask(s.task), s.difficulties, s.calculator, s.formatWeight);
    return trainGrpo(io, () => loadModelDir(env.checkpointOf(s.from)), source, s, s);
  },
  forecast(s, ctx) {
    const L = sampledTraceLengths(s.task, s.difficulties),
      config = ctx.configs.get(s.from)!;
    ctx.configs.set(s.name, config);
    const T = L.maxPrompt + L.maxCompletion;
    const updateT = L.prompt + Math.min(L.completion, s.maxNewTokens + 1);
    return grpoForecast(s, config, L, { updateT }, T, ctx);
  },
};
