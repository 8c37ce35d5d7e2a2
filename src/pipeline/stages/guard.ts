// guard: the safety classifier (a small Llama read by pooling, labels as tokens), trained from scratch on
// the safety corpus by safety/guard-train.ts. It is not a policy: the task eval skips it.
import { z } from "zod";
import { parseModelConfig } from "../../model/config.js";
import { trainFlops } from "../../model/flops.js";
import { labelTokens } from "../../safety/guard.js";
import { GuardConfig, trainGuard } from "../../safety/guard-train.js";
import { losoSources } from "../../safety/loso.js";
import { timeSentenceEmbed, timeSentenceStep } from "../../safety/sentence-guard.js";
import { timeWordStep } from "../../safety/word-guard.js";
import type { StageKind } from "./kind.js";
import { ModelShape, stageName } from "./shared.js";

export const GuardStage = GuardConfig.extend({ type: z.literal("guard"), name: stageName, model: ModelShape }).strict();
export type GuardStage = z.infer<typeof GuardStage>;

export const guard: StageKind<GuardStage> = {
  type: "guard",
  schema: GuardStage,
  inputs: () => [],
  evaluated: false,
  dataParallel: false,
  run: (s, io) => trainGuard(io, s),
  forecast(s, ctx) {
    // guard examples are ~40 BPE tokens; its batches pad to the longest, ~64 (measured on the training draw)
    const vocab = s.vocabSize + labelTokens().length;
    const config = parseModelConfig({ ...s.model, model_type: "llama", vocab_size: vocab }, "forecast");
    ctx.configs.set(s.name, config);
    // next-token steps (lmSteps) cost about what a classifier step does at the same (B, T)
    const c = ctx.calibration.of(config, s.batchSize, 64),
      lc = s.leaveOneOut,
      folds = lc ? losoSources(lc.sources).length : 0,
      losoSteps = lc ? folds * ((lc.lmSteps ?? s.lmSteps) + (lc.steps ?? s.steps)) : 0,
      steps = (s.lmSteps + s.steps) * s.members + losoSteps;
    const members = s.members > 1 ? `${s.members} members × ` : "";
    const loso = lc ? ` + ${folds} leave-one-source-out guards (${losoSteps} steps)` : "";
    const wv = s.wordVectors,
      wordS = wv ? (1 + folds) * wv.steps * timeWordStep(wv) : 0,
      words = wv ? ` + ${1 + folds} word-vector members (${wv.steps} steps, ${Math.round(wordS)} s)` : "";
    // a sentence member embeds its pool and the threshold's dev prompts; a fold draws mostly texts the encoder
    // has cached, about a third new (measured over 16 folds), and its training steps are a small MLP's
    const sv = s.sentenceVectors,
      embedS = sv ? ((sv.pool + s.devItems) * (1 + folds / 3) * timeSentenceEmbed()) / 1000 : 0,
      sentS = sv ? (1 + folds) * sv.steps * timeSentenceStep(sv) + embedS : 0,
      sentences = sv ? ` + ${1 + folds} sentence members (${sv.pool} prompts embedded, ${Math.round(sentS)} s)` : "";
    return {
      name: s.name,
      seconds: steps * c.stepS + wordS + sentS,
      flops: trainFlops(config, steps * s.batchSize * 64, 64),
      detail: `${members}(${s.lmSteps} + ${s.steps}) steps${loso} × ${c.stepS.toFixed(3)} s${words}${sentences} (+ tokenizer training and the held-out report, not forecast)`,
    };
  },
};
