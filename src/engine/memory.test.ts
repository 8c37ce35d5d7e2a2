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
