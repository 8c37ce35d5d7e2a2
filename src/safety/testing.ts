// Helpers shared by the safety tests only: a tiny random guard over a 300-token BPE.
import { tinyLlamaConfig } from "../model/testing.js";
import { initModel } from "../model/transformer.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import { Guard, withLabelTokens } from "./guard.js";

/** A one-layer guard of random weights (one model per seed: an ensemble) flagging at `threshold`. */
export function tinyGuard(threshold: number, seeds = [1], pooling: "mean" | "max" = "mean"): Guard {
  const tok = withLabelTokens(trainBpe(["how do I bake bread", "kill a process", "hello world"], 300));
  const config = tinyLlamaConfig(tok.vocabSize, 32);
  const [first, ...rest] = seeds.map((s) => initModel(config, s));
  return new Guard(first!, tok, threshold, pooling, rest);
}
