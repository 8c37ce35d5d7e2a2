// Helpers shared by the safety tests only: a tiny random guard over a 300-token BPE.
import { parseModelConfig } from "../model/config.js";
import { initModel } from "../model/transformer.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import { Guard, withLabelTokens } from "./guard.js";

/** A one-layer guard of random weights (one model per seed: an ensemble) flagging at `threshold`. */
export function tinyGuard(threshold: number, seeds = [1], pooling: "mean" | "max" = "mean"): Guard {
  const tok = withLabelTokens(trainBpe(["how do I bake bread", "kill a process", "hello world"], 300));
  const config = parseModelConfig(
    {
      model_type: "llama",
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 32,
      vocab_size: tok.vocabSize,
      tie_word_embeddings: true,
    },
    "test",
  );
  const [first, ...rest] = seeds.map((s) => initModel(config, s));
  return new Guard(first!, tok, threshold, pooling, rest);
}
