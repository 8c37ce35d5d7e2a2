// grpo: R1-Zero-style RL on a task with the rule reward (accuracy + format, 0.1 by default), from an earlier stage.
// The algorithm and its variants live in rl/; this module only wires the task's prompts to it, and with `seeds`
// trains several runs from the same start and averages their weights (a model soup).
import { z } from "zod";
import { loadModelDir } from "../../model/load.js";
import { averageModels } from "../../model/surgery.js";
import { GrpoConfig, trainGrpo, grpoSettings } from "../../rl/grpo.js";
import { getTask } from "../../tasks/index.js";
import type { StageIO } from "../../train/loop.js";
import { trainCombined } from "../../train/members.js";
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
  /**
   * this many GRPO runs from the same start (seeds seed + 1009·m, each in member-m/; under MPI spread whole
   * between the ranks), their weights averaged into the stage's model: the mean of RL runs is steadier than one
   */
  seeds: z.number().int().min(1).max(8).default(1),
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
  dataParallel: (s) => (s.seeds > 1 ? "units" : true), // seeds are spread whole between the ranks
  run(s, io, env) {
    const source = taskSource(getTask(s.task), s.difficulties, s.calculator, s.formatWeight);
    const init = () => loadModelDir(env.checkpointOf(s.from));
    const train = (mio: StageIO) => trainGrpo(mio, init, source, s, s);
    if (s.seeds === 1) return train(io);
    return {
      ...trainCombined(io, s.seeds, train, averageModels, s, { seeds: s.seeds }, true),
      notes: { seeds: s.seeds },
    };
  },
  forecast(s, ctx) {
    const L = sampledTraceLengths(s.task, s.difficulties),
      config = ctx.configs.get(s.from)!;
    ctx.configs.set(s.name, config);
    const T = L.maxPrompt + L.maxCompletion;
    const updateT = L.prompt + Math.min(L.completion, s.maxNewTokens + 1);
    if (s.seeds === 1) return grpoForecast(s, config, L, { updateT }, T, ctx);
    // each rank runs its seeds whole, alone: one process's run, as many times as the busiest rank has seeds
    const f = grpoForecast(s, config, L, { updateT }, T, { ...ctx, ranks: 1 }),
      ranks = ctx.ranks ?? 1,
      turns = Math.ceil(s.seeds / ranks);
    const where = ranks > 1 ? `; ${ranks} ranks, ${turns} per rank` : "";
    return {
      ...f,
      seconds: f.seconds * turns,
      flops: f.flops * s.seeds,
      detail: `${s.seeds} seeds × (${f.detail})${where}`,
    };
  },
};
