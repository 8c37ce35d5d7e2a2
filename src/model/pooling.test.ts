// forwardPooled's readings (mean, per-channel max, mean+max): the arg-max mask by hand, padding and batch
// neighbours never change a sequence's logits, and gradients through max pooling match finite differences.
// growVocab: a model over an extended vocabulary reads old ids exactly as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as E from "../engine/index.js";
import { randn, Rng } from "../common/rng.js";
import { parseModelConfig } from "./config.js";
import { argmaxMask, forward, forwardPooled, growVocab, initModel, POOLINGS } from "./transformer.js";

const config = parseModelConfig({ model_type: "llama", hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 32, max_position_embeddings: 16, vocab_size: 20, tie_word_embeddings: true }, "test");

test("argmaxMask: one 1 per sequence and channel, at the largest value among the first lengths[b] positions", () => {
  // B = 2, T = 3, C = 2; sequence 1 has length 2, so its third position (value 9) is padding
  const x = Float32Array.from([1, 5, 3, 2, 2, 7, /* seq 1 */ 0, -1, 4, -3, 9, 9]);
  assert.deepEqual([...argmaxMask(x, Int32Array.from([3, 2]), 3, 2)], [0, 0, 1, 0, 0, 1, /* seq 1 */ 0, 1, 1, 0, 0, 0]);
  assert.deepEqual([...argmaxMask(Float32Array.from([2, 2]), Int32Array.from([2]), 2, 1)], [1, 0], "first position wins a tie");
});

test("forwardPooled: a sequence's logits do not depend on its padding or on the other sequences (every pooling)", () => {
  const model = initModel(config, 4), rng = new Rng(5), T = 7, lengths = Int32Array.from([7, 3, 5]);
  const ids = Int32Array.from({ length: 3 * T }, () => rng.int(0, 19));
  for (const pooling of POOLINGS) {
    const all = E.noGrad(() => forwardPooled(model, ids, 3, T, lengths, pooling).toArray());
    E.endStep();
    lengths.forEach((n, b) => {
      const alone = E.noGrad(() => forwardPooled(model, ids.slice(b * T, b * T + n), 1, n, Int32Array.from([n]), pooling).toArray());
      E.endStep();
      for (let v = 0; v < 20; v++) assert.ok(Math.abs(alone[v]! - all[b * 20 + v]!) < 1e-4, `${pooling}: sequence ${b} logit ${v}: ${alone[v]} alone vs ${all[b * 20 + v]} in the batch`);
    });
  }
});

test("forwardPooled: gradients through max and mean+max pooling match central differences", () => {
  const rng = new Rng(6), T = 6, lengths = Int32Array.from([6, 4]);
  const ids = Int32Array.from({ length: 2 * T }, () => rng.int(0, 19)), r = randn(rng, 2 * 20);
  for (const pooling of ["max", "mean+max"] as const) {
    const model = initModel(config, 7), W = model.params.get("model.embed_tokens.weight")!;
    const loss = () => { const o = forwardPooled(model, ids, 2, T, lengths, pooling).data; let s = 0; for (let i = 0; i < o.length; i++) s += r[i]! * o[i]!; return s; };
    W.zeroGrad();
    E.backward(E.scalarFn(forwardPooled(model, ids, 2, T, lengths, pooling), () => ({ value: 0, grad: r })));
    const analytic = Float32Array.from(W.grad);
    E.endStep();
    const h = 1e-3;
    for (const i of [...new Set(ids)].slice(0, 6).flatMap((id) => [id * 16, id * 16 + 7])) {
      const old = W.data[i]!;
      W.data[i] = old + h; const up = E.noGrad(loss); E.endStep();
      W.data[i] = old - h; const dn = E.noGrad(loss); E.endStep();
      W.data[i] = old;
      const num = (up - dn) / (2 * h);
      assert.ok(Math.abs(num - analytic[i]!) <= 3e-2 * (1 + Math.abs(num)), `${pooling}: d/dW[${i}] analytic ${analytic[i]} vs numeric ${num}`);
    }
  }
});

test("growVocab: old ids give the same logits (tied and untied heads); a new token starts as the mean of its pieces' rows", () => {
  for (const tie of [true, false]) {
    const m = initModel({ ...config, tie_word_embeddings: tie }, 3), grown = growVocab(m, 24, (id) => [id - 20, id - 19]);
    const ids = Int32Array.from([1, 5, 7, 2]);
    const before = E.noGrad(() => Array.from(forward(m, ids, 1, 4).data)); E.endStep();
    const after = E.noGrad(() => Array.from(forward(grown, ids, 1, 4).data)); E.endStep();
    for (let t = 0; t < 4; t++) for (let v = 0; v < 20; v++) assert.ok(Math.abs(after[t * 24 + v]! - before[t * 20 + v]!) < 1e-5, `tie=${tie} t=${t} v=${v}`);
    const emb = grown.params.get("model.embed_tokens.weight")!.data, old = m.params.get("model.embed_tokens.weight")!.data, C = config.hidden_size;
    for (let j = 0; j < C; j++) assert.ok(Math.abs(emb[22 * C + j]! - (old[2 * C + j]! + old[3 * C + j]!) / 2) < 1e-7);
    assert.equal(grown.config.vocab_size, 24);
    assert.throws(() => growVocab(m, 10, () => [0]), /smaller than the model's/);
    assert.throws(() => growVocab(m, 21, () => [99]), /internal: growVocab/);
  }
});
