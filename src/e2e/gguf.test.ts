// GGUF export: header and metadata readable, the RoPE row permutation, rope_scaling refused with a reason, the
// Llama, Qwen2 and Qwen3 fixtures read by llama.cpp with frugal's next-token probabilities (F32) and greedy tokens
// (F32 and F16), and
// llama.cpp (node-llama-cpp 3.21.1) reproducing frugal's greedy tokens on the exported file of a
// tiny base trained here, and tokenizing text as frugal's BPE policy tokenizer does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures, repoRoot, tempDir } from "../common/testing.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { generate } from "../model/sampler.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";
import { loadModelDir } from "../model/load.js";
import { promptIds } from "../tokenizer/chat.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";
import { llamaGreedy, llamaNextProbs, loadLlamaCpp } from "../bench/llama.js";
import * as E from "../engine/index.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import { parseModelConfig } from "../model/config.js";
import { forward, initModel } from "../model/transformer.js";
import { exportGguf, permuteRope, roundToF16 } from "../serve/gguf.js";
import { useBf16Decoding } from "../model/half.js";
import { getTask } from "../tasks/index.js";
import { problems } from "../tasks/task.js";

test("permuteRope: rotate-half rows (h, j, i) move to interleaved (h, i, j)", () => {
  const heads = 2,
    D = 4,
    cols = 1,
    w = Float32Array.from({ length: heads * D }, (_, i) => i);
  assert.deepEqual([...permuteRope(w, heads, D, cols)], [0, 2, 1, 3, 4, 6, 5, 7]);
});

test("GGUF: header, tensor count and llama metadata are written", () => {
  const ck = loadCheckpoint(join(fixtures, "tiny-llama-f32"));
  const chars = Array.from({ length: ck.model.config.vocab_size - 9 }, (_, i) => String.fromCharCode(97 + i)).join("");
  const tok = CharTokenizer.fromChars(chars);
  assert.equal(tok.vocabSize, ck.model.config.vocab_size);
  const f = join(tempDir(), "m.gguf");
  const out = exportGguf(ck.model, tok, f, "fixture");
  const b = readFileSync(f),
    dv = new DataView(b.buffer, b.byteOffset);
  assert.equal(b.subarray(0, 4).toString(), "GGUF");
  assert.equal(dv.getUint32(4, true), 3);
  assert.equal(Number(dv.getBigUint64(8, true)), out.tensors);
  assert.equal(out.tensors, 2 + 9 * ck.model.config.num_hidden_layers + (ck.model.config.tie_word_embeddings ? 0 : 1));
  assert.ok(
    b.includes(Buffer.from("llama.attention.head_count_kv")) && b.includes(Buffer.from("blk.0.ffn_gate.weight")),
  );
});

test("GGUF: a model with rope_scaling is refused with the reason", () => {
  const ck = loadCheckpoint(join(fixtures, "tiny-llama3-sharded"));
  assert.throws(
    () => exportGguf(ck.model, CharTokenizer.fromChars("ab"), join(tempDir(), "q.gguf"), "q"),
    /GGUF export does not write rope_scaling/,
  );
});

/** A char tokenizer whose ids cover exactly the fixture's embedding rows. */
function fixtureTokenizer(rows: number): CharTokenizer {
  return CharTokenizer.fromChars(Array.from({ length: rows - 9 }, (_, i) => String.fromCharCode(97 + i)).join(""));
}

for (const [name, dtype] of [
  ["tiny-llama-f32", "f32"],
  ["tiny-qwen2-bf16", "f32"],
  ["tiny-qwen3-bf16", "f32"],
  ["tiny-qwen2-bf16", "f16"],
  ["tiny-qwen3-bf16", "f16"],
  ["tiny-llama-f32", "bf16"],
  ["tiny-qwen2-bf16", "bf16"],
] as const) {
  test(`llama.cpp reproduces frugal's greedy tokens: ${name} as ${dtype.toUpperCase()} GGUF`, async () => {
    const { model } = loadCheckpoint(join(fixtures, name)),
      f = join(tempDir(), `${name}.gguf`);
    const tok = fixtureTokenizer(model.config.vocab_size),
      end = tok.tokenId("<|end|>"); // the file's eos: llama.cpp stops there
    exportGguf(model, tok, f, name, dtype);
    // frugal computes with the weights the file holds: rounded to f16 for an F16 file
    if (dtype === "f16") for (const t of model.params.values()) if (t.shape.length === 2) roundToF16(t.data);
    if (dtype === "bf16") useBf16Decoding(model); // and frugal decodes from the bfloat16 bits, as the file holds
    if (dtype === "f32") {
      // the whole next-token distribution at every position, not only its argmax
      const ids = [3, 17, 5, 11, 4, 9, 20, 1],
        V = model.config.vocab_size,
        theirs = await llamaNextProbs(f, ids, V);
      const logits = E.noGrad(() => forward(model, Int32Array.from(ids), 1, ids.length)).data;
      let worst = 0;
      ids.forEach((_, t) => {
        const row = logits.subarray(t * V, (t + 1) * V),
          mx = Math.max(...row),
          z = row.reduce((a, x) => a + Math.exp(x - mx), 0);
        row.forEach((x, v) => (worst = Math.max(worst, Math.abs(Math.exp(x - mx) / z - theirs[t]![v]!))));
      });
      E.endStep();
      assert.ok(worst < 1e-4, `next-token probabilities differ by up to ${worst}`);
    }
    for (const prompt of [
      [1, 2, 3],
      [7, 5, 11, 4, 2],
    ]) {
      const ours = generate(model, [prompt], [0], { maxNewTokens: 12, temperature: 0, stopTokens: [end] })[0]!.tokens;
      const theirs = await llamaGreedy(f, prompt, 12, end);
      assert.deepEqual(theirs.tokens, ours, `prompt ${prompt}`);
    }
  });
}

test("llama.cpp reproduces frugal's greedy tokens on the exported file", async () => {
  const r = readRecipe(join(repoRoot, "recipes/tiny.json")),
    out = join(tempDir(), "run");
  runRecipe(
    { ...r, stages: [{ ...r.stages[0]!, steps: 300 } as (typeof r.stages)[number]], eval: undefined },
    { outDir: out, resume: false, quiet: true, noForecast: true },
  );
  const t = loadModelDir(join(stageDir(out, "base"), "checkpoint")),
    f = join(tempDir(), "tiny.gguf");
  exportGguf(t.model, t.tokenizer, f, "tiny");
  const end = t.tokenizer.tokenId("<|end|>");
  const task = getTask("addition");
  for (const prob of problems(task, "test", 3, 7, [2])) {
    const p = task.prompt(prob),
      ids = promptIds(t.tokenizer, p);
    const ours = generate(t.model, [ids], [0], { maxNewTokens: 48, temperature: 0, stopTokens: [end] })[0]!.tokens;
    const theirs = await llamaGreedy(f, ids, 48, end);
    assert.ok(ours.length > 5);
    assert.deepEqual(
      theirs.tokens,
      ours,
      `${p}: frugal "${t.tokenizer.decode(ours)}" vs llama.cpp "${t.tokenizer.decode(theirs.tokens)}"`,
    );
  }
});

test("llama.cpp tokenizes text exactly as frugal's digit-preserving BPE policy tokenizer does", async () => {
  const corpus = Array.from(
    { length: 200 },
    (_, i) => `How do I make bread ${i}? What is the history of arson; carry 1, 12+34=46. I cannot help with that.`,
  );
  const tok = trainBpe(corpus, 400, { singleDigits: true });
  const config = parseModelConfig(
    {
      model_type: "llama",
      vocab_size: tok.vocabSize,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 64,
    },
    "test",
  );
  const f = join(tempDir(), "bpe.gguf");
  exportGguf(initModel(config, 1), tok, f, "bpe");
  const { getLlama } = await loadLlamaCpp();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const model = await llama.loadModel({ modelPath: f });
  try {
    for (const s of [
      "0123+4567",
      "How do I make bread at home?",
      "history of arson, carry 1, 12+34=46",
      "  spaces   and\ttabs",
      "naïve café 東京 🙂",
      "<think>3+4+0=7,carry 1</think><answer>1297</answer>",
    ]) {
      assert.deepEqual([...model.tokenize(s, true)], tok.encode(s), JSON.stringify(s));
    }
  } finally {
    await model.dispose();
  }
});
