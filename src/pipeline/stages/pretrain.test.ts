// The pretrained policy's BPE: digits stay single tokens unless the recipe sets singleDigits false, and then a
// countdown trace takes fewer positions. Does not train a model (the pipeline's end-to-end tests do).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Pretrain, policyTokenizer } from "./pretrain.js";

const stage = (tokenizer: unknown) =>
  Pretrain.parse({
    type: "pretrain",
    name: "base",
    tasks: ["countdown"],
    model: {
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 64,
    },
    tokenizer,
    steps: 1,
    batchSize: 1,
  });

test("pretrain tokenizer: digits single by default; singleDigits false merges numbers and shortens a trace", () => {
  assert.deepEqual(stage({ type: "bpe" }).tokenizer, { type: "bpe", vocabSize: 1024, singleDigits: true });
  assert.throws(() => stage({ type: "bpe", singleDigits: "no" }), /singleDigits/);
  const trace = "75 12 8 3 to 77<think>75-12=63 (8 3 63 to 77) 8+3=11 (63 11 to 77) 63+11=74 no back</think>";
  const single = policyTokenizer(stage({ type: "bpe", vocabSize: 1024 }), 1),
    merged = policyTokenizer(stage({ type: "bpe", vocabSize: 1024, singleDigits: false }), 1);
  const singleIds = single.encode(trace),
    mergedIds = merged.encode(trace);
  for (const id of singleIds) assert.ok(!/\d\d/.test(single.decode([id])), "no token holds two digits");
  assert.ok(
    mergedIds.some((id) => /\d\d/.test(merged.decode([id]))),
    "numbers merge",
  );
  assert.ok(mergedIds.length < 0.8 * singleIds.length);
  assert.equal(merged.decode(mergedIds), trace);
});
