// sft: cold-start supervised fine-tuning on a small fixed set of reference traces (the same `examples`
// problems every time the stage runs), loss on the completion only. Starts from an earlier stage.
import { z } from "zod";
import { Rng } from "../../common/rng.js";
import { loadModelDir } from "../../model/load.js";
import { SupervisedConfig, trainSupervised } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import {
  difficultyMap,
  drawProblems,
  stageName,
  stageInput,
  stageTraceLengths,
  supervisedForecast,
  taskList,
  traceExample,
} from "./shared.js";

export const Sft = SupervisedConfig.extend({
  type: z.literal("sft"),
  name: stageName,
  from: stageInput,
  tasks: taskList,
  difficulties: difficultyMap,
  /** size of the cold-start set (R1 used thousands of long, well-formatted traces) */
  examples: z.number().int().positive().default(200),
}).strict();
export type Sft = z.infer<typeof Sft>;

export const sft: StageKind<Sft> = {
  type: "sft",
  schema: Sft,
  inputs: (s) => [s.from],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    const set = drawProblems(s.tasks, s.difficulties, new Rng(io.seed ^ 0xc01d), s.examples);
    return trainSupervised(
      io,
      () => loadModelDir(env.checkpointOf(s.from)),
      (_step, rng, t) =>
        Array.from({ length: s.batchSize }, () => {
          const x = set[rng.int(0, set.length - 1)]!;
          return traceExample(t.tokenizer, x.task, x.p, false);
        }),
      s,
      s,
    );
  },
  forecast(s, ctx) {
    const L = stageTraceLengths(s.tasks[0]!, s.difficulties),
      config = ctx.configs.get(s.from)!;
    ctx.configs.set(s.name, config);
    return supervisedForecast(s, config, L.prompt + L.completion, ctx);
  },
};
