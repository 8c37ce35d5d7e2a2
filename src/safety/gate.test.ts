// The gate's rule and its guarded refusals on given decisions; the served path (forced decision tokens) is
// driven end to end in e2e/serve.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelConfig } from "../model/config.js";
import { initModel } from "../model/transformer.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";
import { Gate } from "./gate.js";
import { tinyGuard } from "./testing.js";

const tok = CharTokenizer.fromChars("abc ");
const policy = initModel(
  parseModelConfig({
    hidden_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    intermediate_size: 32,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 32,
  }),
  1,
);

test("gate: no guard → no rule and refusals are an internal error; a guard → union, or steered with steering", () => {
  assert.equal(new Gate(policy, tok).rule, null);
  assert.throws(() => new Gate(policy, tok).refusals([{ text: "a" }], { margin: [1], deciding: [true] }), /internal:/);
  const guard = tinyGuard(0.5),
    steering = { guardWeight: 1, threshold: 0.5, devBenignRate: 0, guardThreshold: 0.5 };
  assert.equal(new Gate(policy, tok, guard).rule, "union");
  assert.equal(new Gate(policy, tok, guard, steering).rule, "steered");
});

test("gate: refusals follow margin + guard log-odds when steered, the union otherwise, the guard alone when not deciding", () => {
  const guard = tinyGuard(0.5),
    items = ["a", "b", "c", "d", "e"].map((text) => ({ text }));
  const d = { margin: [2, -2, 0, 5, -5], deciding: [true, true, true, false, false] },
    g = { lo: [-1, 1, 0, -9, 9], flagged: [false, true, false, false, true] };
  const steering = { guardWeight: 1, threshold: 0.5, devBenignRate: 0, guardThreshold: 0.5 };
  assert.deepEqual(new Gate(policy, tok, guard, steering).refusals(items, d, g), [true, false, false, false, true]);
  assert.deepEqual(new Gate(policy, tok, guard).refusals(items, d, g), [true, true, false, false, true]);
  const own = new Gate(policy, tok, guard).refusals(items, d); // the guard's own scores on the texts
  assert.equal(own.length, 5);
  assert.deepEqual([own[0], own[3]], [true, guard.classify(["d"], "prompt")[0]!.unsafe]);
});
