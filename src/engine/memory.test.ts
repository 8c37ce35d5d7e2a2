// The memory-saving ops give the plain ops' numbers: headLogprobs (chunked LM head) against linear + logprobs /
// crossEntropy, values and gradients; checkpoint against the same function on the tape, with less pool memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../common/rng.js";
import * as E from "./index.js";
import { randomParam } from "./testing.js";
import type { Tensor } from "./tensor.js";

const rng = new Rng(11);
const P = (shape: number[], std = 1) => randomParam(rng, shape, std);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

test("headLogprobs with allowed tokens: the softmax over them, as logits pushed to −10⁴ elsewhere", () => {
  const N = 6,
    C = 5,
    V = 11,
    h = P([N, C]),
    W = P([V, C], 0.5),
    targets = Int32Array.from({ length: N }, (_, i) => (i * 3) % V);
  // rows 1 and 4 allow every token; the others allow their target and a few more
  const allowed = Array.from({ length: N }, (_, r) =>
    r % 3 === 1 ? null : Uint8Array.from({ length: V }, (_, v) => (v === targets[r] || (v + r) % 4 === 0 ? 1 : 0)),
  );
  const bias = new Float32Array(N * V);
  allowed.forEach((m, r) => m?.forEach((a, v) => (bias[r * V + v] = a ? 0 : -1e4)));
  const run = (f: () => Tensor) => {
    h.zeroGrad();
    W.zeroGrad();
    const lp = f();
    const out = { lp: Float32Array.from(lp.data), dh: new Float32Array(0), dW: new Float32Array(0) };
    E.backward(E.maskedMeanNeg(lp));
    [out.dh, out.dW] = [Float32Array.from(h.grad), Float32Array.from(W.grad)];
    E.endStep();
    return out;
  };
  const want = run(() => E.logprobs(E.add(E.linear(h, W), E.constant([N, V], bias)), targets));
  const got = run(() => E.headLogprobs(h, W, targets, undefined, 4, allowed));
  const plain = run(() => E.headLogprobs(h, W, targets));
  assert.ok(maxDiff(want.lp, got.lp) < 1e-5, `log-probs ${maxDiff(want.lp, got.lp)}`);
  assert.ok(maxDiff(want.dh, got.dh) < 1e-5 && maxDiff(want.dW, got.dW) < 1e-5, "gradients");
  for (let r = 0; r < N; r++)
    if (allowed[r]) assert.ok(got.lp[r]! > plain.lp[r]! + 1e-4, `row ${r}: renormalised over fewer tokens`);
    else assert.ok(Math.abs(got.lp[r]! - plain.lp[r]!) < 1e-6, `row ${r}: no mask, the plain softmax`);
  const refusing = allowed.map((m, r) => (r === 0 ? new Uint8Array(V) : m));
  assert.throws(() => E.headLogprobs(h, W, targets, undefined, 4, refusing), /row 0's mask .* refuses its target/);
  const short = allowed.map((m, r) => (r === 0 ? new Uint8Array(V - 1).fill(1) : m));
  assert.throws(() => E.headLogprobs(h, W, targets, undefined, 4, short), /expected 11 \(V\), got row 0's mask of 10/);
  E.endStep();
});

test("headLogprobs: chunked log-probs, entropy and gradients equal linear + logprobs; with a mask, crossEntropy", () => {
  const N = 10,
    C = 8,
    V = 37,
    h = P([N, C]),
    W = P([V, C], 0.5),
    targets = Int32Array.from({ length: N }, (_, i) => (i * 7) % V),
    mask = Float32Array.from({ length: N }, (_, i) => (i % 3 ? 1 : 0));
  const grads = (f: () => Tensor) => {
    h.zeroGrad();
    W.zeroGrad();
    const loss = f();
    E.backward(loss);
    const out = { loss: loss.item(), dh: Float32Array.from(h.grad), dW: Float32Array.from(W.grad) };
    E.endStep();
    return out;
  };
  const full = grads(() => E.crossEntropy(E.linear(h, W), targets, mask));
  const chunked = grads(() => E.maskedMeanNeg(E.headLogprobs(h, W, targets, undefined, 3), mask));
  assert.ok(Math.abs(full.loss - chunked.loss) < 1e-6, `loss ${full.loss} vs ${chunked.loss}`);
  assert.ok(maxDiff(full.dh, chunked.dh) < 1e-6, `dh ${maxDiff(full.dh, chunked.dh)}`);
  assert.ok(maxDiff(full.dW, chunked.dW) < 1e-6, `dW ${maxDiff(full.dW, chunked.dW)}`);
  E.noGrad(() => {
    const logits = E.linear(h, W),
      ent = { mask, out: new Float32Array(N) };
    const a = E.logprobs(logits, targets).data,
      b = E.headLogprobs(h, W, targets, ent, 4).data;
    assert.ok(maxDiff(a, b) < 1e-6);
    for (let r = 0; r < N; r++) {
      const row = Array.from(logits.data.subarray(r * V, (r + 1) * V)),
        mx = Math.max(...row),
        z = row.reduce((s, x) => s + Math.exp(x - mx), 0);
      const want = mask[r] ? -row.reduce((s, x) => s + (Math.exp(x - mx) / z) * (x - mx - Math.log(z)), 0) : 0;
      assert.ok(Math.abs(ent.out[r]! - want) < 1e-5, `entropy of row ${r}: ${ent.out[r]} vs ${want}`);
    }
  });
  E.endStep();
  assert.throws(() => E.headLogprobs(h, W, Int32Array.of(1, 2)), /headLogprobs.*\(N, C\), \(V, C\), N/);
  h.data[0] = NaN;
  assert.throws(() => E.headLogprobs(h, W, targets), /headLogprobs: log-probabilities holds NaN/);
  E.endStep();
});

test("checkpoint: the same gradients as keeping the activations, from less memory", () => {
  const W1 = P([64, 32], 0.2),
    W2 = P([32, 64], 0.2),
    x0 = P([48, 32]);
  const layer = (x: Tensor) => E.add(x, E.linear(E.swiglu(E.linear(x, W1), E.linear(x, W1)), W2));
  const run = (ckpt: boolean) => {
    for (const p of [W1, W2, x0]) p.zeroGrad();
    E.releasePool();
    let x: Tensor = x0;
    for (let l = 0; l < 6; l++) x = ckpt ? E.checkpoint(x, layer) : layer(x);
    const loss = E.crossEntropy(
      x,
      Int32Array.from({ length: 48 }, (_, i) => i % 32),
    );
    E.backward(loss);
    const r = { grads: [W1, W2, x0].map((p) => Float32Array.from(p.grad)), pooled: E.poolStats().pooledFloats };
    E.endStep();
    return r;
  };
  const plain = run(false),
    ckpt = run(true);
  plain.grads.forEach((g, i) => assert.ok(maxDiff(g, ckpt.grads[i]!) < 1e-6, `gradient ${i} differs`));
  assert.ok(ckpt.pooled < plain.pooled * 0.6, `pool ${ckpt.pooled} floats vs ${plain.pooled} without checkpointing`);
});
