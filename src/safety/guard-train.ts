// Training the guard as a pipeline stage: a byte-level BPE fitted on the training split's text, a fresh
// small transformer read by mean pooling, cross-entropy on the one label token, then the threshold
// tuned on the dev split and a report on the held-out test sets. Prompts and completions are both taught:
// a completion is judged by what it gives, so refusals of harmful requests are safe and compliance is not.
import { Rng } from "../common/rng.js";
import { parseModelConfig } from "../model/config.js";
import { initModel } from "../model/transformer.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import * as E from "../engine/index.js";
import { trainFlops } from "../model/flops.js";
import { forwardPooled } from "../model/transformer.js";
import { lossAndBackward, lrAt, makeBatch } from "../train/batch.js";
import { runLoop, type LoopOutcome, type StageIO } from "../train/loop.js";
import { adamw, resumePoint, saveStage, type SupervisedConfig, type Trainee } from "../train/supervised.js";
import { drawItem, heldOutSets, howCore, rowsOf, type SafetyItem } from "./data.js";
import { Guard, guardIds, labelTokens, packGuard, SAFE_LABEL, withLabelTokens, type GuardMode } from "./guard.js";
import { HARMFUL, LOOKALIKES } from "./phrases.js";
import { CONCEPTS, EVERYDAY } from "./concepts.js";
import { probeSets } from "./probe.js";
import { benignCompletion, refusalCompletion } from "./policy.js";
import { renderCompletion } from "../tokenizer/chat.js";

export interface GuardStageConfig extends SupervisedConfig {
  name: string;
  vocabSize: number;
  model: { hidden_size: number; num_hidden_layers: number; num_attention_heads: number; num_key_value_heads: number; intermediate_size: number; max_position_embeddings: number; rope_theta: number; tie_word_embeddings: boolean };
  /** share of training examples that are completions rather than prompts */
  completionFrac: number;
  /** the threshold is set so that at most this share of dev benign prompts is flagged */
  targetBenignFlagRate: number;
  devItems: number;
  /** next-token steps on English text (the training split's prompts and own phrases) before classifying */
  lmSteps: number;
}

/** A completion that does what was asked (unsafe when the request was). */
export function complianceCompletion(request: string): string {
  const core = howCore(request) ?? request.replace(/[.?!\s]+$/, "");
  return renderCompletion(`The user wants me to ${core}. Let me work out the steps.`, `Sure, here is how to ${core}. Step 1:`);
}

/** A guard training example: text in a mode and the label it must give. */
export function guardExample(item: SafetyItem, mode: GuardMode, rng: Rng): { text: string; label: string } {
  const hazardLabel = `<|${item.hazard ?? "S2"}|>`;
  if (mode === "prompt") return { text: item.text, label: item.unsafe ? hazardLabel : SAFE_LABEL };
  if (!item.unsafe) return { text: rng.next() < 0.3 ? benignCompletion() : complianceCompletion(item.text), label: SAFE_LABEL };
  return rng.next() < 0.5 ? { text: refusalCompletion(item.hazard ?? "S2"), label: SAFE_LABEL } : { text: complianceCompletion(item.text), label: hazardLabel };
}

function corpus(): string[] {
  const texts = rowsOf("train").map((r) => r.prompt);
  texts.push(...LOOKALIKES, ...Object.values(HARMFUL).flat(), ...CONCEPTS.flatMap((c) => [c.name, ...c.acts]), ...EVERYDAY, benignCompletion(), ...Object.keys(HARMFUL).map(refusalCompletion));
  return texts;
}

export function trainGuard(io: StageIO, cfg: GuardStageConfig) {
  const init = (): Trainee => {
    const tokenizer = withLabelTokens(trainBpe(corpus(), cfg.vocabSize));
    const config = parseModelConfig({ ...cfg.model, model_type: "llama", vocab_size: tokenizer.vocabSize }, `stage ${cfg.name}.model`);
    return { model: initModel(config, io.seed), tokenizer };
  };
  const out = trainClassifier(io, init, cfg);
  if (out.stopped) return { ...out, notes: {} };
  const threshold = tuneThreshold(out.trainee, cfg.targetBenignFlagRate, io.seed, cfg.devItems);
  saveStage(io, out.trainee, out.steps, cfg, null, { threshold, labels: labelTokens() });
  const report = guardReport(new Guard(out.trainee.model, out.trainee.tokenizer, threshold));
  return { ...out, notes: { threshold, ...report } };
}

/**
 * The guard's loop. Steps below lmSteps read English: next-token loss on texts of the training split, so
 * the trunk learns which words go together before it learns labels; the rest classify: pooled logits,
 * cross-entropy on the label token. One AdamW and one learning-rate schedule over both.
 */
function trainClassifier(io: StageIO, init: () => Trainee, cfg: GuardStageConfig): LoopOutcome & { trainee: Trainee } {
  const resumed = resumePoint(io), t = resumed?.trainee ?? init(), total = cfg.lmSteps + cfg.steps;
  const params = t.model.params, opt = resumed?.opt ?? E.adamwInit(params), ac = adamw(cfg), maxLen = t.model.config.max_position_embeddings;
  const out = runLoop(io, resumed?.step ?? 0, total, (step) => {
    const rng = new Rng(io.seed * 1_000_003 + step);
    const r = step < cfg.lmSteps ? lmStep(t, rng, cfg.batchSize, maxLen) : classifyStep(t, rng, cfg, maxLen);
    const lr = lrAt(step, total, cfg.lr, cfg.warmup, cfg.minLrFrac);
    const gradNorm = E.adamwUpdate(params, opt, ac, lr);
    return { metrics: { loss: r.loss, lr, gradNorm, lm: step < cfg.lmSteps ? 1 : 0 }, usage: { promptTokens: 0, generatedTokens: 0, trainedTokens: r.tokens, flops: trainFlops(t.model.config, r.tokens, r.T) } };
  }, (step) => saveStage(io, t, step, cfg, opt));
  return { ...out, trainee: t };
}

/** One classification batch: forward, loss, backward (the caller updates). */
function classifyStep(t: Trainee, rng: Rng, cfg: GuardStageConfig, maxLen: number): { loss: number; tokens: number; T: number } {
  const seqs: number[][] = [], labels: number[] = [];
  for (let i = 0; i < cfg.batchSize; i++) {
    const mode: GuardMode = rng.next() < cfg.completionFrac ? "completion" : "prompt";
    const ex = guardExample(drawItem(rng, "train"), mode, rng);
    seqs.push(guardIds(t.tokenizer, ex.text, mode, maxLen));
    labels.push(t.tokenizer.tokenId(ex.label));
  }
  const { ids, B, T, lengths } = packGuard(seqs);
  const loss = E.crossEntropy(forwardPooled(t.model, ids, B, T, lengths), Int32Array.from(labels));
  const value = loss.item();
  E.backward(loss);
  E.endStep();
  return { loss: value, tokens: B * T, T };
}

/** One next-token batch on English text read as the guard reads prompts (a CSV row or a drawn item). */
function lmStep(t: Trainee, rng: Rng, batchSize: number, maxLen: number): { loss: number; tokens: number; T: number } {
  const rows = rowsOf("train"), seqs: number[][] = [];
  for (let i = 0; i < batchSize; i++) {
    const text = rng.next() < 0.5 ? rng.pick(rows).prompt : drawItem(rng, "train").text;
    seqs.push(guardIds(t.tokenizer, text, "prompt", maxLen).slice(0, -1));
  }
  const batch = makeBatch(seqs, seqs.map((s) => s.map(() => 1)), maxLen);
  return { loss: lossAndBackward(t.model, batch), tokens: batch.tokens, T: batch.T };
}

/** Smallest threshold that flags at most `rate` of dev benign prompts (dev = tuning split, never test). */
export function tuneThreshold(t: Trainee, rate: number, seed: number, devItems = 3000): number {
  const g = new Guard(t.model, t.tokenizer, 0.5), rng = new Rng(seed ^ 0xde5);
  const items = Array.from({ length: devItems }, () => drawItem(rng, "dev")).filter((x) => !x.unsafe);
  const scores = g.classify(items.map((x) => x.text)).map((v) => v.pUnsafe).sort((a, b) => a - b);
  const q = scores[Math.min(scores.length - 1, Math.floor((1 - rate) * scores.length))]!;
  return Math.min(0.95, Math.max(0.01, q + 1e-6));
}

/** Flag rates on every held-out set (prompt mode). */
export function guardReport(g: Guard): Record<string, number> {
  const sets = { ...heldOutSets(), ...probeSets() }, out: Record<string, number> = {};
  for (const [name, items] of Object.entries(sets)) {
    const v = g.classify(items.map((x: SafetyItem) => x.text));
    out[`${name}FlagRate`] = v.filter((x) => x.unsafe).length / Math.max(1, v.length);
    out[`${name}N`] = items.length;
  }
  return out;
}
