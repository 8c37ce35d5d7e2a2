// forwardPooled's readings (mean, per-channel max, mean+max): the arg-max mask by hand, padding and batch
// neighbours never change a sequence's logits, and gradients through max pooling match finite differences.
// growVocab: a model over an extended vocabulary reads old ids exactly as before. widenModel: a wider model
// computes the same logits, and one step's gradients reach every weight it added. mergeModels: members side by
// side; averageModels: the weights' mean, as wide as one; addBiasChannel/setLogitBias: one token's logit moves
// right after the carrier token and nowhere else.
import { tinyLlamaConfig } from "./testing.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as E from "../engine/index.js";
import { randn, Rng } from "../common/rng.js";
import {
  addBiasChannel,
  averageModels,
  biasChannel,
  growVocab,
  mergeModels,
  setLogitBias,
  widenModel,
} from "./surgery.js";
import { argmaxMask, forwardPooled, POOLINGS } from "./pooling.js";
import { forward, initModel } from "./transformer.js";

const config = tinyLlamaConfig(20, 16);

test("argmaxMask: one 1 per sequence and channel, at the largest value among the first lengths[b] positions", () => {
  // B = 2, T = 3, C = 2; sequence 1 has length 2, so its third position (value 9) is padding
  const x = Float32Array.from([1, 5, 3, 2, 2, 7, /* seq 1 */ 0, -1, 4, -3, 9, 9]);
  assert.deepEqual([...argmaxMask(x, Int32Array.from([3, 2]), 3, 2)], [0, 0, 1, 0, 0, 1, /* seq 1 */ 0, 1, 1, 0, 0, 0]);
  assert.deepEqual(
    [...argmaxMask(Float32Array.from([2, 2]), Int32Array.from([2]), 2, 1)],
    [1, 0],
    "first position wins a tie",
  );
});

test("forwardPooled: a sequence's logits do not depend on its padding or on the other sequences (every pooling)", () => {
  const model = initModel(config, 4),
    rng = new Rng(5),
    T = 7,
    lengths = Int32Array.from([7, 3, 5]);
  const ids = Int32Array.from({ length: 3 * T }, () => rng.int(0, 19));
  for (const pooling of POOLINGS) {
    const all = E.noGrad(() => forwardPooled(model, ids, 3, T, lengths, pooling).toArray());
    E.endStep();
    lengths.forEach((n, b) => {
      const alone = E.noGrad(() =>
        forwardPooled(model, ids.slice(b * T, b * T + n), 1, n, Int32Array.from([n]), pooling).toArray(),
      );
      E.endStep();
      for (let v = 0; v < 20; v++)
        assert.ok(
          Math.abs(alone[v]! - all[b * 20 + v]!) < 1e-4,
          `${pooling}: sequence ${b} logit ${v}: ${alone[v]} alone vs ${all[b * 20 + v]} in the batch`,
        );
    });
  }
});

test("forwardPooled: gradients through max and mean+max pooling match central differences", () => {
  const rng = new Rng(6),
    T = 6,
    lengths = Int32Array.from([6, 4]);
  const ids = Int32Array.from({ length: 2 * T }, () => rng.int(0, 19)),
    r = randn(rng, 2 * 20);
  for (const pooling of ["max", "mean+max"] as const) {
    const model = initModel(config, 7),
      W = model.params.get("model.embed_tokens.weight")!;
    const loss = () => {
      const o = forwardPooled(model, ids, 2, T, lengths, pooling).data;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += r[i]! * o[i]!;
      return s;
    };
    W.zeroGrad();
    E.backward(E.scalarFn(forwardPooled(model, ids, 2, T, lengths, pooling), () => ({ value: 0, grad: r })));
    const analytic = Float32Array.from(W.grad);
    E.endStep();
    const h = 1e-3;
    for (const i of [...new Set(ids)].slice(0, 6).flatMap((id) => [id * 16, id * 16 + 7])) {
      const old = W.data[i]!;
      W.data[i] = old + h;
      const up = E.noGrad(loss);
      E.endStep();
      W.data[i] = old - h;
      const dn = E.noGrad(loss);
      E.endStep();
      W.data[i] = old;
      const num = (up - dn) / (2 * h);
      assert.ok(
        Math.abs(num - analytic[i]!) <= 3e-2 * (1 + Math.abs(num)),
        `${pooling}: d/dW[${i}] analytic ${analytic[i]} vs numeric ${num}`,
      );
    }
  }
});

test("growVocab: old ids give the same logits (tied and untied heads); a new token starts as the mean of its pieces' rows", () => {
  for (const tie of [true, false]) {
    const m = initModel({ ...config, tie_word_embeddings: tie }, 3),
      grown = growVocab(m, 24, (id) => [id - 20, id - 19]);
    const ids = Int32Array.from([1, 5, 7, 2]);
    const before = E.noGrad(() => Array.from(forward(m, ids, 1, 4).data));
    E.endStep();
    const after = E.noGrad(() => Array.from(forward(grown, ids, 1, 4).data));
    E.endStep();
    for (let t = 0; t < 4; t++)
      for (let v = 0; v < 20; v++)
        assert.ok(Math.abs(after[t * 24 + v]! - before[t * 20 + v]!) < 1e-5, `tie=${tie} t=${t} v=${v}`);
    const emb = grown.params.get("model.embed_tokens.weight")!.data,
      old = m.params.get("model.embed_tokens.weight")!.data,
      C = config.hidden_size;
    for (let j = 0; j < C; j++) assert.ok(Math.abs(emb[22 * C + j]! - (old[2 * C + j]! + old[3 * C + j]!) / 2) < 1e-7);
    assert.equal(grown.config.vocab_size, 24);
    assert.throws(() => growVocab(m, 10, () => [0]), /smaller than the model's/);
    assert.throws(() => growVocab(m, 21, () => [99]), /internal: growVocab/);
  }
});

test("widenModel: the same logits in a wider model (tied/untied, Llama/Qwen2 biases, grouped heads); every new weight gets a gradient", () => {
  const ids = Int32Array.from([1, 5, 7, 2, 9, 3]),
    targets = Int32Array.from([5, 7, 2, 9, 3, 4]);
  for (const [tie, bias] of [
    [true, false],
    [false, true],
  ] as const) {
    const m = initModel(
      {
        ...config,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        tie_word_embeddings: tie,
        attention_bias: bias,
      },
      5,
    );
    for (const [n, t] of m.params)
      if (n.endsWith(".bias") || n.endsWith("norm.weight"))
        t.data.set(randn(new Rng(n.length), t.data.length, 0.3).map((x) => x + (n.endsWith("bias") ? 0 : 1)));
    const w = widenModel(
      m,
      { hidden_size: 32, num_attention_heads: 8, num_key_value_heads: 4, intermediate_size: 48 },
      1,
    );
    const before = E.noGrad(() => Array.from(forward(m, ids, 1, 6).data));
    E.endStep();
    const after = E.noGrad(() => Array.from(forward(w, ids, 1, 6).data));
    E.endStep();
    after.forEach((x, i) => assert.ok(Math.abs(x - before[i]!) < 1e-5, `tie=${tie} logit ${i}: ${x} vs ${before[i]}`));
    // new heads and units write nothing at first, so their reading weights learn from the second step on
    for (let step = 0; step < 2; step++) {
      for (const t of w.params.values()) t.grad!.fill(0);
      E.backward(E.crossEntropy(forward(w, ids, 1, 6), targets));
      E.endStep();
      if (step === 0)
        for (const t of w.params.values())
          t.data.forEach((x, i) => {
            t.data[i] = x - 0.1 * t.grad![i]!;
          });
    }
    for (const [n, t] of w.params) {
      // the old shape's block sits top-left; what lies outside it must be trainable
      const old = m.params.get(n)!.shape,
        cols = t.shape.length === 2 ? t.shape[1]! : t.shape[0]!,
        oc = old.length === 2 ? old[1]! : old[0]!;
      let grown = 0;
      t.grad!.forEach((g, i) => {
        const r = Math.floor(i / cols),
          c = i % cols;
        if ((t.shape.length === 2 && r >= old[0]!) || c >= oc) grown += Math.abs(g);
      });
      assert.ok(
        grown > 0 || t.data.length === m.params.get(n)!.data.length,
        `${n}: no gradient reaches its new weights`,
      );
    }
  }
  assert.throws(
    () =>
      widenModel(
        initModel(config, 1),
        { hidden_size: 24, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 32 },
        1,
      ),
    /heads must keep their size 8/,
  );
  assert.throws(
    () =>
      widenModel(
        initModel(config, 1),
        { hidden_size: 8, num_attention_heads: 1, num_key_value_heads: 1, intermediate_size: 32 },
        1,
      ),
    /can only grow/,
  );
});

const logitsOf = (m: Parameters<typeof forward>[0], ids: Int32Array) => {
  const r = E.noGrad(() => Array.from(forward(m, ids, 1, ids.length).data));
  E.endStep();
  return r;
};

test("mergeModels: copies of one model merge into the same logits; members sit block-diagonally; shapes must match", () => {
  const a = initModel({ ...config, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false }, 2),
    b = initModel(a.config, 3);
  const ids = Int32Array.from([3, 1, 4, 1, 5]),
    one = logitsOf(a, ids);
  logitsOf(mergeModels([a, a, a]), ids).forEach((x, i) => assert.ok(Math.abs(x - one[i]!) < 1e-5, `logit ${i}`));
  const m = mergeModels([a, b]),
    C = config.hidden_size,
    q = m.params.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.deepEqual(
    [m.config.hidden_size, m.config.num_attention_heads, m.config.num_key_value_heads, m.config.intermediate_size],
    [2 * C, 8, 4, 64],
  );
  const qb = b.params.get("model.layers.0.self_attn.q_proj.weight")!.data;
  assert.equal(q.data[C * 2 * C + C + 1], qb[1]); // member 1's first query row, second input dim
  assert.equal(q.data[C * 2 * C + 1], 0); // … reads nothing of member 0
  assert.throws(
    () => mergeModels([a, initModel({ ...a.config, intermediate_size: 16 }, 1)]),
    /members must share one shape/,
  );
});

test("averageModels: copies average to the same logits; each weight is the members' mean; shapes must match", () => {
  const a = initModel(config, 2),
    b = initModel(config, 3),
    ids = Int32Array.from([3, 1, 4, 1, 5]);
  const one = logitsOf(a, ids);
  logitsOf(averageModels([a, a, a]), ids).forEach((x, i) => assert.ok(Math.abs(x - one[i]!) < 1e-5, `logit ${i}`));
  const m = averageModels([a, b]),
    name = "model.layers.0.mlp.down_proj.weight";
  assert.deepEqual(m.config, a.config);
  const wa = a.params.get(name)!.data,
    wb = b.params.get(name)!.data;
  assert.notEqual(wa[5], wb[5]);
  m.params.get(name)!.data.forEach((x, i) => assert.ok(Math.abs(x - (wa[i]! + wb[i]!) / 2) < 1e-7, `weight ${i}`));
  assert.throws(
    () => averageModels([a, initModel({ ...a.config, intermediate_size: 16 }, 1)]),
    /averageModels: member 1 .* members must share one shape/,
  );
});

test("addBiasChannel: β = 0 changes nothing; β moves one token's logit right after the carrier only, by β·k with k > 0", () => {
  const m = initModel({ ...config, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false }, 4),
    carrier = 7,
    token = 11;
  const ids = Int32Array.from([3, 1, 7, 2, 7, 5]),
    before = logitsOf(m, ids),
    V = config.vocab_size;
  const w = addBiasChannel(m, carrier, 1);
  assert.equal(biasChannel(w), config.hidden_size);
  // β = 0: exact before the first carrier (causal); after it, only the carrier's one dim of c² in its norms moves
  // anything
  const range = Math.max(...before) - Math.min(...before);
  logitsOf(w, ids).forEach((x, i) =>
    assert.ok(
      i < 2 * V ? x === before[i] || Math.abs(x - before[i]!) < 1e-6 : Math.abs(x - before[i]!) < 0.05 * range,
      `β = 0, logit ${i}: ${x} vs ${before[i]}`,
    ),
  );
  const zero = logitsOf(w, ids);
  setLogitBias(w, token, 50);
  const after = logitsOf(w, ids);
  after.forEach((x, i) => {
    const t = Math.floor(i / V),
      moved = ids[t] === carrier && i % V === token;
    if (moved) assert.ok(x - zero[i]! > 0.05, `position ${t}: token ${token} rose by ${x - zero[i]!}`);
    else assert.equal(x, zero[i], `position ${t}, token ${i % V} must not move`);
  });
  assert.equal(biasChannel(m), -1);
  assert.throws(() => setLogitBias(m, token, 1), /no bias channel/);
  assert.throws(() => addBiasChannel(initModel(config, 1), carrier, 1), /tied LM head/);
});
