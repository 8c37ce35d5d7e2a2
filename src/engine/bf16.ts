// bfloat16 as the engine stores it: the top 16 bits of a float32, rounded to nearest even. Conversions only;
// the kernels that read bf16 weights or KV caches widen the bits themselves.

/** bfloat16 bits of a float32 value given as its bits (u = the Uint32 view), rounded to nearest even; NaN stays NaN. */
export function bf16Bits(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

const f = new Float32Array(1),
  u = new Uint32Array(f.buffer);

/** The float32 value of bfloat16 bits. */
export function bf16Value(h: number): number {
  u[0] = h << 16;
  return f[0]!;
}

/** Rounds src into dst (bfloat16 bits) from element `at` on, as a KV cache stores a new position. */
export function storeBf16(dst: Uint16Array, src: Float32Array, at: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[at + i] = bf16Bits(bits[i]!);
}
