// safety-grpo: GRPO on a mix of task prompts (rule reward) and safety prompts (the guard's judgement of the
// reply), from the safety-SFT policy. Then, in the same checkpoint: the refusal prior set in the weights on
// benign dev prompts (optional), and the steering by which `serve --guard` combines the two judges.
import { z } from "zod";
import { FrugalError } from "../../common/errors.js";
import { addCheckpointFiles } from "../../model/checkpoint.js";
import { loadModelDir } from "../../model/load.js";
import { biasChannelConfig } from "../../model/surgery.js";
import { GrpoConfig, trainGrpo, grpoSettings } from "../../rl/grpo.js";
import { loadGuard } from "../../safety/hf-guard.js";
import type { SafetyJudge } from "../../safety/guard.js";
import { mixedSource } from "../../safety/source.js";
import { calibrateDecision, STEERING_FILE, tuneSteering, type DecisionCalibration } from "../../safety/steer.js";
import { getTask } from "../../tasks/index.js";
import { saveStage } from "../../train/supervised.js";
import { join } from "node:path";
import type { StageKind } from "./kind.js";
import { mixShapes, SafetyMix, safetyDrawTokens, steeringForecast } from "./safety-mix.js";
import { formatWeight, grpoForecast, stageInput, stageName, taskSource } from "./shared.js";

export const SafetyGrpo = GrpoConfig.extend({
  type: z.literal("safety-grpo"),
  name: stageName,
  ...SafetyMix,
  /** a guard stage, or hf:DIR for a brought generative guard (Llama Guard 3, Qwen3Guard-Gen) */
  guard: stageInput,
  /**
   * after training, set the policy's refusal prior in its weights (a logit bias on the refusal token right
   * after <think>, addBiasChannel) so that it refuses this share of the benign dev prompts (the CSV's dev
   * rows as written and in trained question frames) — the policy's counterpart of the guard's
   * targetBenignFlagRate; unset = leave the decision where training put it
   */
  decisionBenignRate: z.number().gt(0).lt(0.5).optional(),
  /** the task's prompts are sampled with its calculator (as in the grpo stage); safety prompts never are */
  calculator: z.boolean().default(false),
  formatWeight,
})
  .strict()
  .superRefine(grpoSettings);
export type SafetyGrpo = z.infer<typeof SafetyGrpo>;

/** The stage's prompts: the task's (rule reward, format at formatWeight) mixed with safety draws judged by the guard. */
export function safetyGrpoSource(s: SafetyGrpo, guard: SafetyJudge) {
  return mixedSource(
    taskSource(getTask(s.task), s.difficulties, s.calculator, s.formatWeight),
    guard,
    s.safetyFrac,
    s.promptChars,
  );
}

export const safetyGrpo: StageKind<SafetyGrpo> = {
  type: "safety-grpo",
  schema: SafetyGrpo,
  inputs: (s) => [s.from, s.guard],
  evaluated: true,
  dataParallel: true,
  run(s, io, env) {
    const guard = loadGuard(env.checkpointOf(s.guard));
    const src = safetyGrpoSource(s, guard);
    const init = () => {
      const t = loadModelDir(env.checkpointOf(s.from)),
        ctx = t.model.config.max_position_embeddings;
      if (s.promptChars + 2 + s.maxNewTokens > ctx)
        throw new FrugalError(
          "RECIPE",
          `stage ${s.name}: promptChars ${s.promptChars} + 2 chat tokens + maxNewTokens ${s.maxNewTokens} exceeds the model's context of ${ctx}; lower one of them`,
        );
      return t;
    };
    const out = trainGrpo(io, init, src, s, s);
    if (out.stopped) return out;
    let trainee = out.trainee,
      calibration: DecisionCalibration | null = null;
    if (s.decisionBenignRate !== undefined) {
      // the refusal prior, set in the weights on benign dev prompts (steer.ts)
      const c = calibrateDecision(trainee.model, trainee.tokenizer, s.promptChars, io.seed, s.decisionBenignRate);
      trainee = { ...trainee, model: c.model };
      calibration = c.calibration;
    }
    // how `serve --guard` combines this model's decision with its guard, tuned on dev draws (steer.ts)
    const steering = tuneSteering(trainee.model, trainee.tokenizer, guard, s.promptChars, io.seed);
    const files = { [STEERING_FILE]: Buffer.from(JSON.stringify(steering, null, 2)) };
    if (calibration) saveStage(io, trainee, out.steps, s, null, { calibration }, files);
    else addCheckpointFiles(join(io.dir, "checkpoint"), files);
    const cal: Record<string, number> = calibration
      ? { decisionBias: calibration.medianShift, decisionDevBenignRate: calibration.devBenignRate }
      : {};
    const notes = { ...cal, steeringThreshold: steering.threshold, steeringDevBenignRate: steering.devBenignRate };
    return { ...out, notes };
  },
  forecast(s, ctx) {
    const config = ctx.configs.get(s.from)!;
    const { L, T, meanT } = mixShapes(s, s.promptsPerStep, config.vocab_size);
    const calibrates = s.decisionBenignRate !== undefined;
    // what the stage hands on: the calibrated decision's bias channel widens the model
    ctx.configs.set(s.name, calibrates ? { ...config, ...biasChannelConfig(config) } : config);
    const members = ctx.members.get(s.from);
    if (members) ctx.members.set(s.name, members);
    const f = grpoForecast(s, config, L, { updateT: meanT }, T, ctx, members);
    // the steering's dev prompts are read in batches of 32, padded to the longest prompt
    const promptLen = safetyDrawTokens(32, s.promptChars, config.vocab_size).longestPrompt;
    const steer = steeringForecast(s, config, promptLen, ctx);
    const what = `${calibrates ? "calibrating the decision and " : ""}tuning the guard steering`;
    return {
      name: s.name,
      seconds: f.seconds + steer.seconds,
      flops: f.flops + steer.flops,
      detail: `${f.detail} + ${steer.seconds.toFixed(1)} s ${what}`,
    };
  },
};
