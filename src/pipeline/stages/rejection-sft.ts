// rejection-sft: sample from an RL checkpoint, keep the completions that are correct and well formed
// (deduplicated, saved so a resumed stage trains on the same data), and fine-tune that checkpoint on them.
import { z } from "zod";
import { loadModelDir } from "../../model/load.js";
import { SupervisedConfig } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import { difficultyList, Sampling, stageInput, stageName, trainOnVerified, verifiedForecast } from "./shared.js";

export const RejectionSft = SupervisedConfig.extend({
  type: z.literal("rejection-sft"),
  name: stageName,
  from: stageInput,
  task: z.string(),
  difficulties: difficultyList,
  ...Sampling,
}).strict();
export type RejectionSft = z.infer<typeof RejectionSft>;

export const rejectionSft: StageKind<RejectionSft> = {
  type: "rejection-sft",
  schema: RejectionSft,
  inputs: (s) => [s.from],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    const from = env.checkpointOf(s.from);
    return trainOnVerified(s, io, from, () => loadModelDir(from));
  },
  forecast(s, ctx) {
    const config = ctx.configs.get(s.from)!;
    ctx.configs.set(s.name, config);
    return verifiedForecast(s, config, config, ctx);
  },
};
