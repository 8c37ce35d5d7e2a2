// Float32 tensors, the step arena and the reverse-mode tape.
//
// THE MEMORY RULE. Tensors made by ops (activations) and their gradients are *step-scoped*: they live
// until endStep(), which hands every buffer back to a pool of size classes, and the next step reuses
// them, so a training loop allocates nothing after its first step; drifting shapes (RL batches) share
// size classes, and free memory beyond a cap is released least-recently-used first. Parameters (param()), their
// gradients, optimizer state and KV caches are *persistent* and never pooled. Reading a step-scoped
// tensor after endStep() throws instead of returning reused memory: copy out (toArray) what you keep.
import { FrugalError, internal, shapeError } from "../common/errors.js";
import { widenBf16 } from "./bf16.js";

/**
 * Where a GPU kernel set keeps copies of the engine's arrays (webgpu/bridge.ts). The host touches a tensor's
 * values only through .data/.grad, which bring the GPU copy home first; kernels get .dev/.gdev, which do not.
 */
export interface Residency {
  /** true while the GPU kernels are the active set (otherwise .dev is .data) */
  active: boolean;
  track(a: Float32Array | Uint16Array): void;
  toHost(a: Float32Array | Uint16Array): void;
  fresh(a: Float32Array): void;
  zero(a: Float32Array): void;
}
let res: Residency | null = null;
export function setResidency(r: Residency | null): void {
  res = r;
}
/** Zeroes a (host and device copies): for step buffers that kernels then add into. */
export function fillZero(a: Float32Array): Float32Array {
  a.fill(0);
  res?.zero(a);
  return a;
}
/** a as the host sees it after every kernel so far (for raw step buffers the host reads after kernels wrote them). */
export function onHost<T extends Float32Array | Uint16Array>(a: T): T {
  res?.toHost(a);
  return a;
}
/** Whether GPU kernels hold the engine's arrays (the host's copy of a raw step buffer may then be stale). */
export function onGpu(): boolean {
  return res?.active ?? false;
}
/** a kept on the device between kernels (raw step buffers only kernels touch). */
export function onDevice<T extends Float32Array | Uint16Array>(a: T): T {
  if (res?.active) res.track(a);
  return a;
}

const pool = new Map<number, Float32Array[]>();
const lastUse = new Map<number, number>();
let live: Float32Array[] = [];
let epoch = 0;
let pooledFloats = 0;
/**
 * The pool keeps at most max(256 MiB, 2 × the largest step seen) and releases the least recently used
 * size classes beyond that. Not by age: sampling ends a "step" per token, so an age rule dropped the
 * training buffers of an RL step between updates and reallocated them every time (a third of GRPO's
 * time); nor a fixed cap below one step's working set, which did the same.
 */
const POOL_MIN_CAP_FLOATS = 64 * 1024 * 1024;
let peakStepFloats = 0;

/** Buffers come in size classes (4 per power of two, ≤ 25% slack) so that varying shapes reuse them. */
export function sizeClass(n: number): number {
  if (n <= 64) return 64;
  const step = 2 ** Math.floor(Math.log2(n)) / 4;
  return Math.ceil(n / step) * step;
}

/**
 * A free pooled buffer of class cls, else one of the smallest class up to twice as large: batches whose length
 * changes every step then reuse the buffers of longer ones instead of allocating (and zeroing) fresh memory.
 */
function takeFree(cls: number): Float32Array | undefined {
  const own = pool.get(cls)?.pop();
  if (own) return own;
  let best = 0;
  for (const [c, free] of pool) if (c > cls && c <= 2 * cls && free.length > 0 && (best === 0 || c < best)) best = c;
  return best ? pool.get(best)!.pop() : undefined;
}

/** A step-scoped buffer of exactly n floats; zeroed unless the caller overwrites every element anyway. */
export function scratch(n: number, zero = true): Float32Array {
  const cls = sizeClass(n);
  let buf = takeFree(cls);
  if (!buf) {
    buf = new Float32Array(cls);
    pooledFloats += cls;
  }
  lastUse.set(buf.length, epoch);
  live.push(buf);
  const view = buf.subarray(0, n);
  if (zero) fillZero(view);
  return view;
}

/** Where the step's buffers stand now: pass it to releaseSince to hand back everything allocated after it. */
export function scratchMark(): number {
  return live.length;
}

/**
 * Hands the step-scoped buffers allocated since `mark` back to the pool before the step ends, except those
 * under `keep`. Only for memory that nothing reads any more (activation checkpointing, chunked loss heads):
 * a tensor on a released buffer is not caught by the stale-read check.
 */
export function releaseSince(mark: number, keep: readonly Float32Array[] = []): void {
  const kept = new Set(keep.map((k) => k.buffer)),
    stay: Float32Array[] = [];
  for (const b of live.splice(mark)) {
    if (kept.has(b.buffer)) {
      stay.push(b);
      continue;
    }
    let free = pool.get(b.length);
    if (!free) pool.set(b.length, (free = []));
    free.push(b);
  }
  live.push(...stay);
}

/** Ends the step: every step-scoped buffer returns to the pool; the tape is cleared. */
export function endStep(): void {
  let stepFloats = 0;
  for (const b of live) {
    stepFloats += b.length;
    let free = pool.get(b.length);
    if (!free) pool.set(b.length, (free = []));
    free.push(b);
  }
  live = [];
  tape.length = 0;
  epoch++;
  peakStepFloats = Math.max(peakStepFloats, stepFloats);
  const cap = Math.max(POOL_MIN_CAP_FLOATS, 2 * peakStepFloats);
  if (pooledFloats > cap) {
    for (const [cls] of [...lastUse].sort((a, b) => a[1] - b[1])) {
      pooledFloats -= cls * (pool.get(cls)?.length ?? 0);
      pool.delete(cls);
      lastUse.delete(cls);
      if (pooledFloats <= cap / 2 + peakStepFloats) break;
    }
  }
}

/**
 * Frees every pooled buffer not in use and forgets the largest step seen, so the cap follows the work that
 * comes next: call it between phases of different sizes (a forecast's calibration, one stage and the next).
 */
export function releasePool(): void {
  for (const [cls, free] of pool) pooledFloats -= cls * free.length;
  pool.clear();
  lastUse.clear();
  peakStepFloats = 0;
}

/** Floats held by the pool, free or in use (stable across steps when the rule holds). */
export function poolStats(): { pooledFloats: number; liveBuffers: number; epoch: number } {
  return { pooledFloats, liveBuffers: live.length, epoch };
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly persistent: boolean;
  requiresGrad: boolean;
  private buf: Float32Array;
  private gbuf: Float32Array | null = null;
  private bits: Uint16Array | null = null;
  private readonly born: number;

  constructor(shape: readonly number[], data: Float32Array, opts: { persistent: boolean; requiresGrad: boolean }) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size)
      throw shapeError("Tensor", [data.length], `${size} values for shape [${shape.join(", ")}]`);
    this.shape = shape;
    this.size = size;
    this.buf = data;
    this.persistent = opts.persistent;
    this.requiresGrad = opts.requiresGrad;
    this.born = epoch;
  }

  private check(): void {
    if (!this.persistent && this.born !== epoch) {
      throw new FrugalError(
        "STALE",
        `tensor [${this.shape.join(", ")}] was read after endStep(); its memory is reused. Copy it out with toArray() before the step ends.`,
      );
    }
  }
  /** The float32 values wherever they are: no transfer (data and dev decide that). */
  private values(): Float32Array {
    this.check();
    if (this.bits) throw internal(`tensor [${this.shape.join(", ")}] is kept as bfloat16 bits only; read .bf16`);
    return this.buf;
  }
  get data(): Float32Array {
    const v = this.values();
    res?.toHost(v);
    return v;
  }
  /** The values for a kernel: on a GPU kernel set, its device copy stays where it is (no transfer). */
  get dev(): Float32Array {
    if (!res?.active) return this.data;
    const v = this.values();
    res.track(v);
    return v;
  }
  /** The bfloat16 bits of a frozen tensor kept in bfloat16 only (keepBf16), else null. */
  get bf16(): Uint16Array | null {
    return this.bits;
  }
  /** Keeps only `bits` (its values rounded to bfloat16): half the memory; `data` is unavailable until widen(). */
  keepBf16(bits: Uint16Array): void {
    if (bits.length !== this.size) throw shapeError("keepBf16", [bits.length], `${this.size} bfloat16 values`);
    res?.track(bits); // never written again: uploaded once
    this.bits = bits;
    this.buf = new Float32Array(0);
  }
  /** Float32 values again from the bfloat16 bits (exactly their values). */
  widen(): void {
    if (!this.bits) return;
    this.buf = widenBf16(this.bits);
    this.bits = null;
  }
  /** The gradient buffer, created zeroed on first use. */
  get grad(): Float32Array {
    const g = this.gradBuf(); // outside res?.(): optional chaining would skip creating it
    res?.toHost(g);
    return g;
  }
  /** The gradient for a kernel (see dev). */
  get gdev(): Float32Array {
    if (!res?.active) return this.grad;
    const g = this.gradBuf();
    res.track(g);
    return g;
  }
  private gradBuf(): Float32Array {
    this.check();
    if (!this.gbuf) this.gbuf = this.persistent ? new Float32Array(this.size) : scratch(this.size);
    return this.gbuf;
  }
  get hasGrad(): boolean {
    return this.gbuf !== null;
  }
  zeroGrad(): void {
    if (this.gbuf) fillZero(this.gbuf);
  }
  toArray(): number[] {
    return Array.from(this.data);
  }
  item(): number {
    if (this.size !== 1) throw shapeError("item", this.shape, "a tensor with one element");
    return this.data[0]!;
  }
  /** Same buffer, new shape (no copy); shares the gradient too. */
  view(shape: readonly number[]): Tensor {
    const t = new Tensor(shape, this.values(), { persistent: this.persistent, requiresGrad: this.requiresGrad });
    if (this.requiresGrad) t.gbuf = this.gradBuf();
    return t;
  }
}

/** A persistent trainable parameter. */
export function param(shape: readonly number[], data?: Float32Array): Tensor {
  return new Tensor(shape, data ?? new Float32Array(shape.reduce((a, b) => a * b, 1)), {
    persistent: true,
    requiresGrad: true,
  });
}
/** A persistent constant (inputs kept across steps, tables). */
export function constant(shape: readonly number[], data: Float32Array): Tensor {
  return new Tensor(shape, data, { persistent: true, requiresGrad: false });
}
/**
 * A step-scoped tensor for op outputs. Not zeroed: forward kernels overwrite every element (the kernel
 * rule), so clearing it first would only cost memory bandwidth. Gradients (Tensor.grad) are zeroed.
 */
export function output(shape: readonly number[], requiresGrad: boolean): Tensor {
  const buf = scratch(
    shape.reduce((a, b) => a * b, 1),
    false,
  );
  res?.fresh(buf);
  return new Tensor(shape, buf, { persistent: false, requiresGrad });
}

// ---- the tape ----
const tape: (() => void)[] = [];
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}
/** Runs fn without recording anything (sampling, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}
/** Tape entries recorded so far (activation checkpointing runs and trims its own stretch of the tape). */
export function tapeLength(): number {
  return tape.length;
}
/** Runs the tape entries from the end down to `from`, then drops them. */
export function runTapeDownTo(from: number): void {
  for (let i = tape.length - 1; i >= from; i--) tape[i]!();
  tape.length = from;
}

/** Ops call this with their backward closure when any input needs a gradient. */
export function record(backward: () => void): void {
  tape.push(backward);
}

/** Reverse pass from a scalar loss; gradients ADD into .grad, so calling it per micro-batch accumulates. */
export function backward(loss: Tensor, gradScale = 1): void {
  if (loss.size !== 1) throw shapeError("backward", loss.shape, "a scalar loss");
  loss.grad[0]! += gradScale;
  for (let i = tape.length - 1; i >= 0; i--) tape[i]!();
  tape.length = 0;
}
