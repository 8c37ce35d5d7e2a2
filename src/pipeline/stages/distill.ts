// distill: a fresh, smaller student (its own shape, the teacher's tokenizer) fine-tuned on a teacher's
// verified traces, sampled once and saved as rejection-sft does.
import { z } from "zod";
import { parseModelConfig } from "../../model/config.js";
import { loadModelDir } from "../../model/load.js";
import { initModel } from "../../model/transformer.js";
import { SupervisedConfig, type Trainee } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import {
  difficultyList,
  ModelShape,
  modelOf,
  Sampling,
  stageName,
  stageInput,
  trainOnVerified,
  verifiedForecast,
} from "./shared.js";

export const Distill = SupervisedConfig.extend({
  type: z.literal("distill"),
  name: stageName,
  teacher: stageInput,
  student: ModelShape,
  task: z.string(),
  difficulties: difficultyList,
  ...Sampling,
}).strict();
export type Distill = z.infer<typeof Distill>;

export const distill: StageKind<Distill> = {
  type: "distill",
  schema: Distill,
  inputs: (s) => [s.teacher],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    const teacherDir = env.checkpointOf(s.teacher);
    const init = (): Trainee => {
      const teacher = loadModelDir(teacherDir);
      const config = parseModelConfig(
        { ...s.student, model_type: "llama", vocab_size: teacher.model.config.vocab_size },
        `stage ${s.name}.student`,
      );
      return { model: initModel(config, io.seed), tokenizer: teacher.tokenizer };
    };
    return trainOnVerified(s, io, teacherDir, init);
  },
  forecast(s, ctx) {
    const teacher = ctx.configs.get(s.teacher)!,
      config = modelOf(s.student, teacher?.vocab_size);
    ctx.configs.set(s.name, config);
    return verifiedForecast(s, config, teacher, ctx);
  },
};
