// Checkpoints: save/load round trip with optimizer and metadata, HF directories in fp32/bf16/fp16, and
// every kind of bad input (truncated or corrupted safetensors, config/tensor mismatch, unknown
// architecture or rope scaling, a missing shard, a tokenizer too large for the embedding) failing with a message that names the file and field — without touching the files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures, tempDir } from "../common/testing.js";
import * as E from "../engine/index.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";
import { loadModelDir } from "./load.js";
import { addCheckpointFiles, loadCheckpoint, loadOptimizer, saveCheckpoint } from "./checkpoint.js";
import { parseModelConfig } from "./config.js";
import { encodeSafetensors, parseSafetensors } from "./safetensors.js";
import { initModel } from "./transformer.js";

const tinyConfig = parseModelConfig({
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 24,
  vocab_size: 30,
  max_position_embeddings: 16,
});

test("save → load round trip: weights, tokenizer, metadata, optimizer state", () => {
  const dir = join(tempDir(), "ck"),
    model = initModel(tinyConfig, 3),
    tok = CharTokenizer.fromChars("abc");
  const opt = E.adamwInit(model.params);
  opt.step = 7;
  opt.m.get("model.norm.weight")![0] = 0.5;
  saveCheckpoint(dir, model, {
    meta: { stage: "sft", step: 7, config: { lr: 1 }, rngState: [1, 2, 3, 4] },
    tokenizer: tok.toJSON(),
    optimizer: opt,
  });
  const ck = loadCheckpoint(dir);
  for (const [n, p] of model.params) assert.deepEqual(ck.model.params.get(n)!.data, p.data);
  assert.equal(ck.meta!.step, 7);
  assert.deepEqual(ck.meta!.rngState, [1, 2, 3, 4]);
  assert.deepEqual(ck.tokenizer, tok.toJSON());
  const o = loadOptimizer(dir, ck.model)!;
  assert.equal(o.step, 7);
  assert.equal(o.m.get("model.norm.weight")![0], 0.5);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.deepEqual(cfg.architectures, ["LlamaForCausalLM"]);
  // saving again over it swaps atomically and leaves no temp directories behind
  saveCheckpoint(dir, model, { meta: { stage: "sft", step: 8, config: {} } });
  assert.deepEqual(readdirSync(join(dir, "..")), ["ck"]);
});

test("Hugging Face directories load in fp32, bf16 (Qwen2 with q/k/v biases, tied head) and fp16", () => {
  for (const name of ["tiny-llama-f32", "tiny-qwen2-bf16", "tiny-llama-f16"]) {
    const ck = loadCheckpoint(join(fixtures, name));
    assert.ok(ck.model.params.size > 0);
    assert.equal(ck.meta, null);
  }
  assert.equal(loadCheckpoint(join(fixtures, "tiny-qwen2-bf16")).model.config.attention_bias, true);
});

function copyFixture(): string {
  const dir = join(tempDir(), "m");
  cpSync(join(fixtures, "tiny-llama-f32"), dir, { recursive: true });
  return dir;
}
function unchanged(dir: string, fn: () => void, pattern: RegExp): void {
  const before = readdirSync(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs, readFileSync(join(dir, f)).length]);
  assert.throws(fn, pattern);
  assert.deepEqual(
    readdirSync(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs, readFileSync(join(dir, f)).length]),
    before,
  );
}

test("bad input: truncated or corrupted safetensors, mismatched config, unknown architecture", () => {
  const dir = copyFixture(),
    st = join(dir, "model.safetensors"),
    full = readFileSync(st);
  writeFileSync(st, full.subarray(0, full.length - 100));
  unchanged(dir, () => loadCheckpoint(dir), /model.safetensors: tensor .* ends at byte \d+ .* \(truncated file\)/);
  writeFileSync(st, full.subarray(0, 5));
  unchanged(dir, () => loadCheckpoint(dir), /too short for a safetensors header/);
  const bad = Buffer.from(full);
  bad.write("@@@@", 8);
  writeFileSync(st, bad);
  unchanged(dir, () => loadCheckpoint(dir), /header is not valid JSON/);
  writeFileSync(st, full);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 41 }));
  unchanged(
    dir,
    () => loadCheckpoint(dir),
    /mlp.gate_proj.weight has 640 values, config.json implies \[41, 16\] = 656; the config does not match the weights/,
  );
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ ...cfg, model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
  );
  unchanged(
    dir,
    () => loadCheckpoint(dir),
    /architecture GPT2LMHeadModel is not supported; frugal runs LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/,
  );
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, model_type: "gemma" }));
  unchanged(dir, () => loadCheckpoint(dir), /model_type "gemma" is not supported; frugal runs LlamaForCausalLM/);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, rope_scaling: { type: "yarn", factor: 4 } }));
  unchanged(dir, () => loadCheckpoint(dir), /rope_scaling type "yarn" is not supported; frugal implements "llama3"/);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, hidden_size: undefined }));
  unchanged(dir, () => loadCheckpoint(dir), /config.json: hidden_size/);
  writeFileSync(join(dir, "config.json"), "{");
  unchanged(dir, () => loadCheckpoint(dir), /config.json is not valid JSON/);
  const empty = join(tempDir(), "empty");
  mkdirSync(empty);
  assert.throws(() => loadCheckpoint(empty), /no config.json; expected a model directory/);
});

test("safetensors: dtype, shape/size and overlap checks; encoder pads the header to 8 bytes", () => {
  const enc = encodeSafetensors(new Map([["a", { shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }]]));
  assert.equal(Number(enc.readBigUInt64LE(0)) % 8, 0);
  assert.deepEqual(Array.from(parseSafetensors(enc, "x").tensors.get("a")!.data), [1, 2, 3, 4]);
  const mk = (header: object, bytes = 16) => {
    const h = Buffer.from(JSON.stringify(header)),
      b = Buffer.alloc(8 + h.length + bytes);
    b.writeBigUInt64LE(BigInt(h.length), 0);
    h.copy(b, 8);
    return b;
  };
  assert.throws(
    () => parseSafetensors(mk({ a: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }), "f"),
    /tensor a has dtype I64; frugal reads F32, F16 and BF16/,
  );
  assert.throws(
    () => parseSafetensors(mk({ a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }), "f"),
    /needs 12 bytes, data_offsets give 16/,
  );
  assert.throws(
    () =>
      parseSafetensors(
        mk({
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
        }),
        "f",
      ),
    /overlap/,
  );
  assert.throws(
    () => parseSafetensors(mk({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 8] } }), "f"),
    /invalid shape/,
  );
  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(1n << 40n, 0);
  assert.throws(() => parseSafetensors(huge, "f"), /header claims/);
});

test("addCheckpointFiles: adds a file through the atomic swap, keeps every other file, refuses a non-checkpoint", () => {
  const dir = join(tempDir(), "ck"),
    model = initModel(tinyConfig, 3);
  saveCheckpoint(dir, model, { meta: { stage: "s", step: 1, config: {} }, extraFiles: { "ref.bin": "x" } });
  const before = readdirSync(dir).sort();
  addCheckpointFiles(dir, { "steering.json": '{"a":1}' });
  assert.deepEqual(readdirSync(dir).sort(), [...before, "steering.json"].sort());
  assert.equal(readFileSync(join(dir, "steering.json"), "utf8"), '{"a":1}');
  assert.equal(readFileSync(join(dir, "ref.bin"), "utf8"), "x");
  assert.deepEqual(
    readdirSync(join(dir, "..")).filter((f) => f.startsWith(".")),
    [],
    "no temp or .old directory left behind",
  );
  for (const [n, p] of model.params) assert.deepEqual(loadCheckpoint(dir).model.params.get(n)!.data, p.data);
  assert.throws(() => addCheckpointFiles(join(tempDir(), "none"), { x: "1" }), /internal: addCheckpointFiles/);
});

test("HF directories: a missing shard and a tokenizer larger than the embedding fail, nothing on disk changed", () => {
  const dir = join(tempDir(), "sharded");
  cpSync(join(fixtures, "tiny-llama3-sharded"), dir, { recursive: true });
  const shard = join(dir, "model-00002-of-00002.safetensors"),
    bytes = readFileSync(shard);
  rmSync(shard);
  unchanged(
    dir,
    () => loadCheckpoint(dir),
    /shard model-00002-of-00002.safetensors listed in model.safetensors.index.json is missing/,
  );
  writeFileSync(shard, bytes);
  assert.equal(loadCheckpoint(dir).model.config.head_dim, 8);
  // 31 embedding rows; a tokenizer with ids up to 40 belongs to another model
  writeFileSync(
    join(dir, "tokenizer.json"),
    JSON.stringify(CharTokenizer.fromChars("abcdefghijklmnopqrstuvwxyz0123").toJSON()),
  );
  unchanged(dir, () => loadModelDir(dir), /tokenizer.json has ids up to \d+ but the embedding has 31 rows/);
});
