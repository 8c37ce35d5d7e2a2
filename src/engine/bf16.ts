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

/** A float32 array as bfloat16 bits, rounded to nearest even. */
export function toBf16Array(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  storeBf16(out, x, 0);
  return out;
}

/** bfloat16 bits as float32 values (exactly theirs). */
export function widenBf16(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length),
    u = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) u[i] = h[i]! << 16;
  return out;
}

/** Rounds src into dst (bfloat16 bits) from element `at` on, as a KV cache stores a new position. */
export function storeBf16(dst: Uint16Array, src: Float32Array, at: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[at + i] = bf16Bits(bits[i]!);
}
