// rejection-sft: sample from an RL checkpoint, keep the completions that are correct and well formed
// (deduplicated, saved so a resumed stage trains on the same data), and fine-tune that checkpoint on them.
import { z } from "zod";
import { loadModelDir } from "../../model/load.js";
import { getTask } from "../../tasks/index.js";
import { SupervisedConfig, trainSupervised } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import {
  cachedTraces,
  difficultyList,
  Sampling,
  stageName,
  stageTraceLengths,
  supervisedForecast,
  traceData,
  verifiedTraces,
  withSampling,
} from "./shared.js";

export const RejectionSft = SupervisedConfig.extend({
  type: z.literal("rejection-sft"),
  name: stageName,
  from: stageName,
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
  run(s, io, env) {
    const task = getTask(s.task),
      from = env.checkpointOf(s.from);
    const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(from), task, s, io.seed));
    const out = trainSupervised(io, () => loadModelDir(from), traceData(traces, s.batchSize), s, s);
    return { ...out, notes: { traces: traces.length } };
  },
  forecast(s, ctx) {
    const L = stageTraceLengths(s.task, s.difficulties),
      config = ctx.configs.get(s.from)!;
    ctx.configs.set(s.name, config);
    const T = L.maxPrompt + L.maxCompletion;
    return withSampling(supervisedForecast(s, config, T, ctx), s, config, L.completion, T, ctx);
  },
};
