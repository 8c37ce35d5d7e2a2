// bfloat16 copies of a model's matrices for decoding: every projection and the LM head rounded to bfloat16
// (nearest even) in place, with the bits kept beside them; decoding without a tape reads the bits, half the
// bytes of float32, and everything else reads the float32 values, which are the same numbers. Training is
// unchanged (it reads float32). Not here: dropping the float32 copy.
import { bf16Bits } from "../engine/bf16.js";
import type { Model } from "./transformer.js";

export { bf16Bits };

/** The matrices decoding reads: the seven projections of every layer and the LM head. */
function decodedMatrices(model: Model): string[] {
  const head = model.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  return [...model.params.keys()].filter((n) => /_proj\.weight$/.test(n) || n === head);
}

/** Rounds the decoded matrices to bfloat16 in place and keeps their bits in model.half. */
export function useBf16Decoding(model: Model): void {
  const half = new Map<string, Uint16Array>();
  for (const name of decodedMatrices(model)) {
    const data = model.params.get(name)!.data,
      u = new Uint32Array(data.buffer, data.byteOffset, data.length),
      h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) {
      h[i] = bf16Bits(u[i]!);
      u[i] = h[i]! << 16;
    }
    half.set(name, h);
  }
  model.half = half;
}
