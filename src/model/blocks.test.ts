// Block-diagonal ensembles: findBlocks finds a merged model's members (with and without a bias channel's silent
// heads) and nothing in an ordinary one; the block forward and decode give the dense model's logits; a training
// step's gradients equal the dense ones on the blocks, and the weights off the blocks stay zero after AdamW.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as E from "../engine/index.js";
import { tinyLlamaConfig } from "./testing.js";
import { addBiasChannel, biasChannelConfig, memberConfig, mergedConfig, mergeModels } from "./surgery.js";
import { findBlocks } from "./blocks.js";
import { KVCache, forward, forwardCached, initModel, modelFromTensors, type Model } from "./transformer.js";

const config = { ...tinyLlamaConfig(20, 16), num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };
const members = (seed: number) => [1, 2, 3].map((s) => initModel({ ...config, tie_word_embeddings: false }, seed + s));
const ids = Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6]);

/** The same weights without the block structure: every projection runs dense. */
function dense(m: Model): Model {
  const { blocks: _, ...rest } = m;
  return rest;
}
const tensors = (m: Model) => new Map([...m.params].map(([n, t]) => [n, Float32Array.from(t.data)]));

function logitsOf(m: Model): number[] {
  const r = E.noGrad(() => Array.from(forward(m, ids, 1, ids.length).data));
  E.endStep();
  return r;
}

test("findBlocks: a merged model's members, also behind a bias channel; nothing in an ordinary or a nudged one", () => {
  const merged = mergeModels(members(0));
  assert.deepEqual(merged.blocks, { n: 3, hidden: 16, heads: 4, kvHeads: 2, intermediate: 32 });
  // the bias channel adds silent heads with random q/k/v rows: no member reads them, so the blocks still hold
  const biased = addBiasChannel(merged, 7, 1);
  assert.equal(biased.config.num_key_value_heads, 7);
  assert.deepEqual(biased.blocks, merged.blocks);
  assert.equal(initModel(config, 1).blocks, undefined);
  const t = tensors(merged);
  t.get("model.layers.1.mlp.down_proj.weight")![5 * 96 + 40] = 1e-7; // member 0's row reads member 1's unit
  assert.equal(modelFromTensors(merged.config, t, "test").blocks, undefined);
  const two = mergeModels(members(0).slice(0, 2));
  assert.equal(two.blocks?.n, 2);
});

test("block forward: the logits of the dense model, for a merged model and behind a bias channel; decoding too", () => {
  for (const m of [mergeModels(members(10)), addBiasChannel(mergeModels(members(20)), 4, 2)]) {
    const a = logitsOf(m),
      b = logitsOf(dense(m));
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-5, `logit ${i}: ${x} vs ${b[i]}`));
    // decoding: the block model's op-by-op path against the dense model's fused kernel, token by token
    const caches = [new KVCache(m.config, 1, 16), new KVCache(m.config, 1, 16)];
    for (let t = 0; t < ids.length; t++) {
      const step = (model: Model, c: KVCache) =>
        E.noGrad(() =>
          forwardCached(model, c, ids.subarray(t, t + 1), Int32Array.of(t), Int32Array.of(0), 1, true).toArray(),
        );
      const x = step(m, caches[0]!),
        y = step(dense(m), caches[1]!);
      E.endStep();
      x.forEach((v, i) => assert.ok(Math.abs(v - y[i]!) < 1e-5, `token ${t}, logit ${i}: ${v} vs ${y[i]}`));
    }
  }
});

test("block training: gradients equal the dense model's on the blocks; off them weights get none and stay zero", () => {
  const m = mergeModels(members(30)),
    d = modelFromTensors(m.config, tensors(m), "copy");
  delete d.blocks;
  const targets = Int32Array.from({ length: ids.length }, (_, i) => (ids[i]! * 7 + i) % 20);
  for (const model of [m, d]) {
    for (const t of model.params.values()) t.zeroGrad();
    E.backward(E.crossEntropy(forward(model, ids, 1, ids.length), targets));
    E.endStep();
  }
  const q = "model.layers.0.self_attn.q_proj.weight",
    C = m.config.hidden_size;
  for (const [name, t] of m.params) {
    const g = t.grad!,
      gd = d.params.get(name)!.grad!;
    g.forEach((x, i) => {
      if (t.data[i] === 0 && /_proj/.test(name)) assert.equal(x, 0, `${name}[${i}] lies off the blocks`);
      else assert.ok(Math.abs(x - gd[i]!) < 1e-5 * (1 + Math.abs(gd[i]!)), `${name}[${i}]: ${x} vs ${gd[i]}`);
    });
  }
  assert.notEqual(d.params.get(q)!.grad![1 * C + 20], 0, "the dense model trains member 0's row on member 1's dims");
  const state = E.adamwInit(m.params);
  E.adamwUpdate(m.params, state, E.defaultAdamW, 0.01);
  assert.deepEqual(
    findBlocks(m.config, (n) => m.params.get(n)!.data),
    m.blocks,
  );
  assert.notDeepEqual(logitsOf(m), logitsOf(mergeModels(members(30))));
});

test("memberConfig: one member's shape back from a merged one, with or without the bias channel's heads", () => {
  const c = { ...config, tie_word_embeddings: false },
    merged = mergedConfig(c, 3);
  assert.deepEqual(memberConfig(merged, 3), c);
  assert.deepEqual(memberConfig({ ...merged, ...biasChannelConfig(merged) }, 3), c);
});
