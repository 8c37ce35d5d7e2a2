// guard: the safety classifier (a small Llama read by pooling, labels as tokens), trained from scratch on
// the safety corpus by safety/guard-train.ts. It is not a policy: the task eval skips it.
import { z } from "zod";
import { parseModelConfig } from "../../model/config.js";
import { trainFlops } from "../../model/flops.js";
import { labelTokens } from "../../safety/guard.js";
import { assignUnits, GuardConfig, guardUnits, trainGuard } from "../../safety/guard-train.js";
import { losoSources } from "../../safety/loso.js";
import { timeSentenceEmbed, timeSentenceStep } from "../../safety/sentence-guard.js";
import { timeWordStep } from "../../safety/word-guard.js";
import type { StageKind } from "./kind.js";
import { ModelShape, stageName } from "./shared.js";

/** A guard example's mean length in tokens. */
const GUARD_TOKENS = 40;

export const GuardStage = GuardConfig.extend({ type: z.literal("guard"), name: stageName, model: ModelShape }).strict();
export type GuardStage = z.infer<typeof GuardStage>;

export const guard: StageKind<GuardStage> = {
  type: "guard",
  schema: GuardStage,
  inputs: () => [],
  evaluated: false,
  dataParallel: "units",
  run: (s, io) => trainGuard(io, s),
  forecast(s, ctx) {
    // guard examples are ~40 BPE tokens (measured on the training draw), and rows train in chunks of like length
    // (planChunks), so a batch costs about its rows at that length
    const vocab = s.vocabSize + labelTokens().length;
    const config = parseModelConfig({ ...s.model, model_type: "llama", vocab_size: vocab }, "forecast");
    ctx.configs.set(s.name, config);
    // next-token steps (lmSteps) cost about what a classifier step does at the same (B, T)
    const c = ctx.calibration.of(config, s.batchSize, GUARD_TOKENS),
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
    // of the word and sentence seconds, the stage's own members take this share, the folds the rest
    const own = 1 / (1 + folds),
      memberS = (s.lmSteps + s.steps) * c.stepS,
      foldS = losoSteps * c.stepS + (wordS + sentS) * (1 - own);
    const split = splitSeconds(s, ctx.ranks ?? 1, memberS, wordS * own, sentS * own);
    return {
      name: s.name,
      seconds: split.seconds + foldS,
      flops: trainFlops(config, steps * s.batchSize * GUARD_TOKENS, GUARD_TOKENS),
      detail: `${members}(${s.lmSteps} + ${s.steps}) steps${loso} × ${c.stepS.toFixed(3)} s${words}${sentences} (+ tokenizer training and the held-out report, not forecast)${split.detail}`,
    };
  },
};

/**
 * The guard's units (members, word and sentence members) on `ranks` ranks as guard-train.ts assigns them: the
 * longest rank's seconds. Its leave-one-source-out folds run whole on every rank.
 */
export function splitSeconds(
  s: Pick<GuardStage, "members" | "wordVectors" | "sentenceVectors">,
  ranks: number,
  memberS: number,
  wordS: number,
  sentS: number,
) {
  const units = guardUnits(s),
    unitS = (u: string) => (u === "words" ? wordS : u === "sentences" ? sentS : memberS);
  const total = units.reduce((a, u) => a + unitS(u.unit), 0);
  if (ranks <= 1) return { seconds: total, detail: "" };
  const load = new Array<number>(ranks).fill(0);
  assignUnits(units, ranks).forEach((r, i) => (load[r]! += unitS(units[i]!.unit)));
  return { seconds: Math.max(...load), detail: `; its units split between ${ranks} ranks` };
}
