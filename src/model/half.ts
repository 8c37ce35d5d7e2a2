// bfloat16 copies of a model's matrices for decoding: every projection and the LM head rounded to bfloat16
// (nearest even) in place, with the bits kept beside them; decoding without a tape reads the bits, half the
// bytes of float32, and everything else reads the float32 values, which are the same numbers. Training reads
// float32, except that keepBaseInBf16 drops the float32 copy of a LoRA stage's frozen projections.
import { internal } from "../common/errors.js";
import { bf16Bits, toBf16Array } from "../engine/bf16.js";
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
    const t = model.params.get(name)!;
    if (t.bf16) {
      half.set(name, t.bf16); // already bfloat16 only
      continue;
    }
    const data = t.data,
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

/**
 * A LoRA stage's frozen base kept in bfloat16 only: every projection's float32 values are dropped for their bits
 * (half the memory), and training reads them through the bfloat16 linear (its backward reaches the input only).
 * The LM head and embeddings stay float32. Saved as BF16 (exact); loading widens them again.
 */
export function keepBaseInBf16(model: Model): void {
  const half = model.half ?? new Map<string, Uint16Array>();
  for (const name of [...model.params.keys()].filter((n) => /_proj\.weight$/.test(n))) {
    const t = model.params.get(name)!;
    if (t.requiresGrad) throw internal(`keepBaseInBf16: ${name} is trained; only a frozen (LoRA) base can be bf16`);
    if (!t.bf16) t.keepBf16(toBf16Array(t.data));
    half.set(name, t.bf16!);
  }
  model.half = half;
}
