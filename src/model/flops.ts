// Analytic FLOP counts (Kaplan et al. 2020 convention): a forward pass costs 2·N + 2·L·T·C per token
// (N = non-embedding parameters, L layers, T context, C width); training costs 3× that.
import { type ModelConfig, paramShapes } from "./config.js";

export function nonEmbeddingParams(c: ModelConfig): number {
  let n = 0;
  for (const [name, s] of paramShapes(c)) if (name !== "model.embed_tokens.weight") n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** FLOPs of one forward pass per token at context length T. */
export function forwardFlopsPerToken(c: ModelConfig, T: number): number {
  return 2 * nonEmbeddingParams(c) + 2 * c.num_hidden_layers * T * c.hidden_size;
}
export function trainFlops(c: ModelConfig, tokens: number, T: number): number {
  return 3 * forwardFlopsPerToken(c, T) * tokens;
}
export function generateFlops(c: ModelConfig, tokens: number, T: number): number {
  return forwardFlopsPerToken(c, T) * tokens;
}
