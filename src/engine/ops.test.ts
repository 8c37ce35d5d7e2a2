// Finite-difference gradient checks for every op (on both kernel sets), the tape's accumulation and
// no-grad mode, AdamW, clear errors for bad shapes and NaN, and the memory rule over 1,000 steps.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as E from "./index.js";
import { randomParam } from "./testing.js";
import { nativeKernels, referenceSet, useKernels, webgpuKernels } from "./backend.js";
import { randn, Rng } from "../common/rng.js";
import type { Tensor } from "./tensor.js";

const rng = new Rng(3);
const P = (shape: number[], std = 1) => randomParam(rng, shape, std);

/** Checks d(Σ r·f(inputs))/d(input) against central differences at a sample of coordinates. */
function gradcheck(name: string, inputs: Tensor[], f: () => Tensor, tol = 2e-2): void {
  const out0 = f();
  const r = randn(rng, out0.size);
  const loss = () => {
    const o = f();
    let s = 0;
    for (let i = 0; i < o.size; i++) s += r[i]! * o.data[i]!;
    return s;
  };
  E.endStep();
  for (const p of inputs) p.zeroGrad();
  const out = f();
  E.backward(E.scalarFn(out, () => ({ value: 0, grad: r })));
  const analytic = inputs.map((p) => Float32Array.from(p.grad));
  E.endStep();
  const h = 1e-2;
  inputs.forEach((p, pi) => {
    for (let s = 0; s < 12; s++) {
      const i = rng.int(0, p.size - 1),
        old = p.data[i]!;
      p.data[i] = old + h;
      const up = E.noGrad(loss);
      E.endStep();
      p.data[i] = old - h;
      const dn = E.noGrad(loss);
      E.endStep();
      p.data[i] = old;
      const num = (up - dn) / (2 * h),
        ana = analytic[pi]![i]!;
      assert.ok(
        Math.abs(num - ana) <= tol * (1 + Math.abs(num)),
        `${name}: d/d input${pi}[${i}] analytic ${ana} vs numeric ${num}`,
      );
    }
  });
}

function allOps(): void {
  const a = P([5, 7]),
    b = P([7, 4]),
    bt = P([4, 7]),
    at = P([7, 5]);
  gradcheck("matmul", [a, b], () => E.matmul(a, b));
  gradcheck("matmul Bᵀ", [a, bt], () => E.matmul(a, bt, { transB: true }));
  gradcheck("matmul Aᵀ", [at, b], () => E.matmul(at, b, { transA: true }));
  gradcheck("matmul AᵀBᵀ", [at, bt], () => E.matmul(at, bt, { transA: true, transB: true }));
  const ba = P([3, 4, 5]),
    bb = P([3, 5, 2]);
  gradcheck("batched matmul", [ba, bb], () => E.matmul(ba, bb));
  const W = P([11, 6]),
    ids = Int32Array.of(1, 4, 4, 10, 0);
  gradcheck("embedding", [W], () => E.embedding(W, ids));
  const x = P([6, 8]),
    w = P([8]);
  gradcheck("rmsnorm", [x, w], () => E.rmsnorm(x, w, 1e-5));
  const tbl = E.ropeTable(10000, 8, 32),
    xr = P([6, 2, 8]),
    pos = Int32Array.of(0, 1, 2, 9, 17, 31);
  gradcheck("rope", [xr], () => E.rope(xr, pos, tbl));
  const q = P([2, 5, 4, 6]),
    k = P([2, 5, 2, 6]),
    v = P([2, 5, 2, 6]);
  gradcheck("attention (GQA)", [q, k, v], () => E.attention(q, k, v));
  const g = P([4, 9]),
    u = P([4, 9]);
  gradcheck("swiglu", [g, u], () => E.swiglu(g, u));
  const logits = P([6, 10], 2),
    tg = Int32Array.of(0, 3, 9, 9, 2, 5);
  gradcheck("logprobs", [logits], () => E.logprobs(logits, tg));
  const mask = Float32Array.of(1, 0, 1, 1, 0, 1);
  gradcheck("crossEntropy (masked)", [logits], () => E.crossEntropy(logits, tg, mask));
  const bias = P([9]);
  gradcheck("addBias", [g, bias], () => E.addBias(g, bias));
  gradcheck("add", [g, u], () => E.add(g, u));
  gradcheck("mul", [g, u], () => E.mul(g, u));
  gradcheck("scale", [g], () => E.scale(g, -1.5));
  // a custom loss whose upstream gradient a kernel wrote (on a GPU set it must be read from the device)
  const cube = (v: Float32Array) => ({
    value: v.reduce((a, x) => a + x ** 3, 0),
    grad: v.map((x) => 3 * x * x),
  });
  gradcheck("scalarFn under add", [g], () => E.add(E.scalarFn(g, cube), E.scale(E.scalarFn(g, cube), 2)));
  gradcheck("view + chain", [x, w], () =>
    E.rmsnorm(E.mul(x, x).view([3, 16]), E.param([16], new Float32Array(16).fill(1)), 1e-5),
  );
}

test("gradient checks, reference kernels", () => {
  const prev = useKernels(referenceSet);
  try {
    allOps();
  } finally {
    useKernels(prev);
  }
});

test("gradient checks, native kernels", { skip: nativeKernels() ? false : "no native addon" }, () => {
  const prev = useKernels(nativeKernels()!);
  try {
    allOps();
  } finally {
    useKernels(prev);
  }
});

const gpu = webgpuKernels().set;
test("gradient checks, webgpu kernels (tensors kept on the device)", { skip: gpu ? false : "no WebGPU device" }, () => {
  const prev = useKernels(gpu!);
  try {
    allOps();
  } finally {
    useKernels(prev);
  }
});

test("stable log-softmax: huge logits stay finite and exact", () => {
  const logits = E.tensor([2, 3], [1000, 0, -1000, 88.7, 88.7, -1e4]);
  const lp = E.logprobs(logits, Int32Array.of(0, 1)).toArray();
  assert.ok(Math.abs(lp[0]!) < 1e-6);
  assert.ok(Math.abs(lp[1]! - Math.log(0.5)) < 2e-5); // float32 spacing near 89 is 7.6e-6
  E.endStep();
});

test("gradients accumulate over micro-batches; noGrad records nothing", () => {
  const w = P([4, 3]),
    x = E.tensor([2, 4], randn(rng, 8));
  E.backward(E.crossEntropy(E.matmul(x, w), Int32Array.of(0, 2)));
  const once = Float32Array.from(w.grad);
  E.endStep();
  E.backward(E.crossEntropy(E.matmul(x, w), Int32Array.of(0, 2)));
  E.endStep();
  for (let i = 0; i < once.length; i++) assert.ok(Math.abs(w.grad[i]! - 2 * once[i]!) < 1e-6);
  w.zeroGrad();
  const y = E.noGrad(() => E.matmul(x, w));
  assert.equal(y.requiresGrad, false);
  E.endStep();
});

test("bad input: shape errors name the op and the shapes; NaN losses and grads stop with the op named", () => {
  assert.throws(
    () => E.matmul(P([2, 3]), P([4, 5])),
    /matmul: expected inner dimensions to agree \(3 vs 4\), got \[2, 3\] x \[4, 5\]/,
  );
  assert.throws(() => E.add(P([2, 3]), P([3, 2])), /add: expected two tensors of the same shape/);
  assert.throws(
    () => E.embedding(P([5, 2]), Int32Array.of(7)),
    /token id 7 at position 0 is outside the vocabulary \[0, 5\)/,
  );
  assert.throws(
    () => E.attention(P([1, 2, 3, 4]), P([1, 2, 2, 4]), P([1, 2, 2, 4])),
    /attention: expected q \(B,T,H,D\)/,
  );
  assert.throws(
    () => E.rope(P([2, 1, 8]), Int32Array.of(0, 40), E.ropeTable(1e4, 8, 32)),
    /position 40 is past the context length 32/,
  );
  const bad = E.tensor([1, 3], [NaN, 0, 1]);
  assert.throws(() => E.crossEntropy(bad, Int32Array.of(0)), /NONFINITE|logprobs|crossEntropy/);
  const w = P([3]);
  w.grad[1] = Infinity;
  assert.throws(
    () =>
      E.adamwUpdate(
        new Map([["model.norm.weight", w]]),
        E.adamwInit(new Map([["model.norm.weight", w]])),
        E.defaultAdamW,
        1e-3,
      ),
    /gradient of model.norm.weight \[3\] is not finite/,
  );
  E.endStep();
});

test("memory rule: 1,000 training steps allocate nothing after the first; stale reads throw", () => {
  const w1 = P([16, 32], 0.1),
    w2 = P([8, 16], 0.1),
    norm = E.param([16], new Float32Array(16).fill(1));
  const params = new Map([
    ["w1", w1],
    ["w2", w2],
    ["norm", norm],
  ]);
  const opt = E.adamwInit(params);
  const x = E.tensor([10, 32], randn(rng, 320)),
    tg = Int32Array.from({ length: 10 }, (_, i) => i % 8);
  let after1 = 0,
    first = 0,
    last = 0;
  for (let step = 0; step < 1000; step++) {
    const h = E.rmsnorm(E.linear(x, w1), norm, 1e-5);
    const loss = E.crossEntropy(E.linear(E.swiglu(h, h), w2), tg);
    E.backward(loss);
    if (step === 0) first = loss.item();
    last = loss.item();
    E.adamwUpdate(params, opt, E.defaultAdamW, 1e-2);
    E.endStep();
    if (step === 0) after1 = E.poolStats().pooledFloats;
  }
  assert.equal(E.poolStats().pooledFloats, after1, "the pool grew after the first step");
  assert.equal(E.poolStats().liveBuffers, 0);
  assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
  const t = E.linear(x, w1);
  E.endStep();
  assert.throws(() => t.data, /read after endStep/);
});

test("memory rule with drifting shapes (RL batches): the pool stays bounded", () => {
  const w = P([32, 32], 0.1),
    rng2 = new Rng(5);
  let peak = 0,
    afterWarm = 0;
  for (let step = 0; step < 400; step++) {
    const rows = rng2.int(1, 300);
    const x = E.tensor([rows, 32], randn(rng2, rows * 32));
    E.backward(
      E.crossEntropy(
        E.linear(x, w),
        Int32Array.from({ length: rows }, (_, i) => i % 32),
      ),
    );
    w.zeroGrad();
    E.endStep();
    if (step === 100) afterWarm = E.poolStats().pooledFloats;
    if (step > 100) peak = Math.max(peak, E.poolStats().pooledFloats);
  }
  // size classes are reused instead of a new buffer per distinct shape: no growth after warm-up
  assert.ok(peak <= afterWarm * 1.5, `pool grew from ${afterWarm} to ${peak} floats`);
});

test("releasePool frees the pool's idle buffers and forgets the peak, keeping buffers in use", () => {
  const big = E.tensor([1024, 1024], new Float32Array(1 << 20).fill(1));
  E.mul(big, big);
  E.endStep();
  assert.ok(E.poolStats().pooledFloats >= 1 << 20, "a step's buffers stay pooled for the next one");
  const held = E.scratch(100);
  E.releasePool();
  const heldFloats = held.buffer.byteLength / 4;
  assert.ok(heldFloats >= E.sizeClass(100) && heldFloats <= 2 * E.sizeClass(100), "its class, or one ≤ 2× larger");
  assert.equal(E.poolStats().pooledFloats, heldFloats, "only the buffer in use is left");
  assert.equal(held.length, 100, "a buffer in use is untouched");
  E.endStep();
  assert.ok(E.poolStats().pooledFloats > 0 && E.poolStats().pooledFloats < 1 << 20);
});

test("a step of a shorter batch reuses the longer step's buffers instead of allocating", () => {
  E.releasePool();
  const x = (n: number) => E.tensor([n], new Float32Array(n).fill(1));
  E.mul(x(100_000), x(100_000));
  E.endStep();
  const before = E.poolStats().pooledFloats;
  assert.notEqual(E.sizeClass(70_000), E.sizeClass(100_000), "the two sizes are of different classes");
  E.mul(x(70_000), x(70_000));
  E.endStep();
  assert.equal(E.poolStats().pooledFloats, before, "no new buffer: the 100,000-float ones were reused");
  E.mul(x(40_000), x(40_000));
  E.endStep();
  assert.ok(E.poolStats().pooledFloats > before, "a buffer over twice the size is not lent to a small request");
});
