// "TENSOR OK": logits, loss, every parameter gradient and greedy tokens of tiny HF-format models (fp32, bf16 Qwen2
// with biases and tied head, fp16, Llama 3 with rope_scaling in two shards, bf16 Qwen3 with q/k norms and an explicit
// head_dim) against values saved from PyTorch by python/golden.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures } from "../common/testing.js";
import * as E from "../engine/index.js";
import { loadCheckpoint } from "./checkpoint.js";
import { forward, tokenLogprobs, type Model } from "./transformer.js";
import { Decoder, generate } from "./sampler.js";
import { mergeLora, trainableParams } from "./lora.js";
import { keepBaseInBf16, useBf16Decoding } from "./half.js";

interface Golden {
  B: number;
  T: number;
  ids: number[];
  targets: number[];
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
  prompt: number[];
  greedy: number[];
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

const MODELS = ["tiny-llama-f32", "tiny-qwen2-bf16", "tiny-llama-f16", "tiny-llama3-sharded", "tiny-qwen3-bf16"];
for (const name of MODELS) {
  test(`${name}: logits, loss, all gradients and greedy tokens match PyTorch`, () => {
    const dir = join(fixtures, name);
    const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as Golden;
    const { model } = loadCheckpoint(dir);
    const logits = forward(model, Int32Array.from(g.ids), g.B, g.T);
    assert.ok(maxDiff(logits.data, g.logits) < 2e-5, `logits maxdiff ${maxDiff(logits.data, g.logits)}`);
    const loss = E.crossEntropy(logits, Int32Array.from(g.targets));
    assert.ok(Math.abs(loss.item() - g.loss) < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
    E.backward(loss);
    assert.deepEqual([...model.params.keys()].sort(), Object.keys(g.grads).sort());
    for (const [pname, p] of model.params) {
      const d = maxDiff(p.grad, g.grads[pname]!);
      assert.ok(d < 2e-5, `${pname} grad maxdiff ${d}`);
      p.zeroGrad();
    }
    E.endStep();
    for (const fusedDecode of [true, false]) {
      const [out] = generate(model, [g.prompt], [1], { temperature: 0, maxNewTokens: g.greedy.length, fusedDecode });
      assert.deepEqual(out!.tokens, g.greedy, `greedy tokens (fused decode ${fusedDecode})`);
    }
  });
}

test("Llama 3 rope_scaling changes the rotation of the slow frequencies only", () => {
  const { model } = loadCheckpoint(join(fixtures, "tiny-llama3-sharded")),
    plain = E.ropeTable(model.config.rope_theta, 8, 64),
    half = 4,
    pos = 50;
  const changed = [0, 1, 2, 3].map(
    (i) => Math.abs(model.rope.cos[pos * half + i]! - plain.cos[pos * half + i]!) > 1e-6,
  );
  assert.deepEqual(changed, [false, true, true, true]);
});

test("PEFT LoRA adapters (all linear layers) on Qwen3: logits, loss, adapter gradients and greedy tokens match PyTorch", () => {
  const dir = join(fixtures, "tiny-qwen3-lora");
  const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as Golden;
  const { model } = loadCheckpoint(dir); // adapter_config.json names ../tiny-qwen3-bf16 as the base
  const logits = forward(model, Int32Array.from(g.ids), g.B, g.T);
  assert.ok(maxDiff(logits.data, g.logits) < 2e-5, `logits maxdiff ${maxDiff(logits.data, g.logits)}`);
  const loss = E.crossEntropy(logits, Int32Array.from(g.targets));
  assert.ok(Math.abs(loss.item() - g.loss) < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
  E.backward(loss);
  const trainable = trainableParams(model);
  assert.deepEqual([...trainable.keys()].sort(), Object.keys(g.grads).sort());
  for (const [pname, p] of trainable) assert.ok(maxDiff(p.grad, g.grads[pname]!) < 2e-5, `${pname} grad`);
  assert.ok(
    [...model.params.values()].every((p) => !p.requiresGrad),
    "base weights are frozen",
  );
  E.endStep();
  for (const fusedDecode of [true, false]) {
    const [out] = generate(model, [g.prompt], [1], { temperature: 0, maxNewTokens: g.greedy.length, fusedDecode });
    assert.deepEqual(out!.tokens, g.greedy, `greedy tokens (fused decode ${fusedDecode})`);
  }
  // merged into the base weights: the same function, no adapters left
  mergeLora(model);
  const merged = E.noGrad(() => forward(model, Int32Array.from(g.ids), g.B, g.T));
  assert.ok(maxDiff(merged.data, g.logits) < 2e-5, `merged logits maxdiff ${maxDiff(merged.data, g.logits)}`);
  assert.equal(model.lora, undefined);
});

/** With per-layer checkpointing and the chunked head: PyTorch's loss and LoRA gradients on the fixture's batch. */
function checkedLoraStep(model: Model, g: Golden): void {
  model.checkpointLayers = true;
  const loss = E.maskedMeanNeg(tokenLogprobs(model, Int32Array.from(g.ids), Int32Array.from(g.targets), g.B, g.T));
  assert.ok(Math.abs(loss.item() - g.loss) < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
  E.backward(loss);
  for (const [pname, p] of trainableParams(model)) assert.ok(maxDiff(p.grad, g.grads[pname]!) < 2e-5, `${pname} grad`);
  E.endStep();
}

test("a bf16-only frozen base (bf16Base) gives PyTorch's loss and LoRA gradients on the bf16 checkpoint", () => {
  const dir = join(fixtures, "tiny-qwen3-lora");
  const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as Golden;
  const { model } = loadCheckpoint(dir);
  keepBaseInBf16(model);
  const q = model.params.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.ok(q.bf16 && q.bf16.length === q.size, "the projections keep bfloat16 bits only");
  assert.throws(() => q.data, /kept as bfloat16 bits only/);
  checkedLoraStep(model, g);
  mergeLora(model); // widens the base again to fold the adapters in
  const merged = E.noGrad(() => forward(model, Int32Array.from(g.ids), g.B, g.T));
  assert.ok(maxDiff(merged.data, g.logits) < 2e-5, `merged logits maxdiff ${maxDiff(merged.data, g.logits)}`);
});

test("per-layer activation checkpointing and the chunked LM head give PyTorch's loss and LoRA gradients too", () => {
  const dir = join(fixtures, "tiny-qwen3-lora");
  const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as Golden;
  const { model } = loadCheckpoint(dir);
  checkedLoraStep(model, g);
});

test("bfloat16 decoding (bf16 weights and KV cache, fused and op by op) keeps PyTorch's greedy tokens", () => {
  for (const name of ["tiny-qwen2-bf16", "tiny-qwen3-bf16"]) {
    const g = JSON.parse(readFileSync(join(fixtures, name, "golden.json"), "utf8")) as Golden;
    const { model } = loadCheckpoint(join(fixtures, name));
    const before = model.params.get("model.layers.0.mlp.up_proj.weight")!.data.slice();
    useBf16Decoding(model);
    assert.deepEqual(model.params.get("model.layers.0.mlp.up_proj.weight")!.data, before, "bf16 values unchanged");
    assert.equal(model.half!.size, 7 * model.config.num_hidden_layers + 1);
    const cache = new Decoder(model, 2, 16).cache;
    assert.ok(cache.k[0] instanceof Uint16Array && cache.v[0] instanceof Uint16Array, "the KV cache holds bf16 bits");
    for (const fusedDecode of [true, false]) {
      const [out] = generate(model, [g.prompt], [1], { temperature: 0, maxNewTokens: g.greedy.length, fusedDecode });
      assert.deepEqual(out!.tokens, g.greedy, `${name}: greedy tokens (fused decode ${fusedDecode})`);
    }
  }
});
