// Helpers shared by tests only: the one-layer, 16-wide Llama config that many tests build a random model from.
import { parseModelConfig, type ModelConfig } from "./config.js";

/** A one-layer Llama of hidden size 16 (2 heads, MLP 32, tied embeddings) over `vocabSize` tokens. */
export function tinyLlamaConfig(vocabSize: number, maxPositions: number): ModelConfig {
  return parseModelConfig(
    {
      model_type: "llama",
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: maxPositions,
      vocab_size: vocabSize,
      tie_word_embeddings: true,
    },
    "test",
  );
}
