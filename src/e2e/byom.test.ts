// Bring your own model: a tiny Hugging Face Qwen3 directory (config, weights, tokenizer.json, tokenizer_config.json
// with a chat template) rendered by its own template, then trained from "hf:DIR" by SFT and GRPO, each checkpoint
// keeping the template; the same with LoRA (PEFT files, export merged). Also: a template that opens <think>
// (R1-Distill, Qwen3), a bad hf: input and a LoRA target that names no module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { repoRoot, tempDir } from "../common/testing.js";
import * as E from "../engine/index.js";
import { readSafetensors } from "../model/safetensors.js";
import { forward, initModel } from "../model/transformer.js";
import { saveCheckpoint } from "../model/checkpoint.js";
import { parseModelConfig } from "../model/config.js";
import { loadModelDir } from "../model/load.js";
import { parseRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";
import { parseCompletion } from "../tasks/rewards.js";
import { getTask } from "../tasks/index.js";
import { taskSource } from "../pipeline/stages/shared.js";
import { GrpoConfig, trainGrpo } from "../rl/grpo.js";
import type { StageIO } from "../train/loop.js";
import { completionText, endId, promptIds, sftExample } from "../tokenizer/chat.js";
import { FORMAT_INSTRUCTION } from "../tokenizer/template.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";

// ChatML with a default system turn, as Qwen2.5-Instruct's template renders a single user message
const CHATML =
  "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}" +
  "{%- endif %}{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
// R1-Distill-style: the generation prompt opens the reasoning block
const OPENS_THINK =
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}";

const SFT_STAGE = {
  type: "sft",
  name: "sft",
  tasks: ["addition"],
  difficulties: { addition: [2] },
  examples: 4,
  steps: 2,
  batchSize: 2,
  maxLen: 512,
};
const GRPO_STAGE = {
  type: "grpo",
  name: "grpo",
  task: "addition",
  difficulties: [2],
  steps: 1,
  promptsPerStep: 1,
  groupSize: 2,
  maxNewTokens: 8,
};
const cli = join(repoRoot, "dist/cli/main.js");

/** A tiny Qwen3 directory whose tokenizer has ChatML's added tokens; `template` goes into tokenizer_config.json. */
function hfDir(template: string, eos = "<|im_end|>"): string {
  const chars = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("") + "\n｜";
  const tok = CharTokenizer.fromChars(chars).toJSON() as {
    added_tokens: { id: number; content: string }[];
    model: { vocab: Record<string, number> };
  };
  let next = Math.max(...Object.values(tok.model.vocab)) + 1;
  for (const content of ["<|im_start|>", "<|im_end|>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>"]) {
    tok.added_tokens.push({ ...tok.added_tokens[0]!, id: next, content });
    tok.model.vocab[content] = next++;
  }
  const config = parseModelConfig({
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    hidden_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    intermediate_size: 64,
    vocab_size: next + 3, // real models pad the embedding past the tokenizer
    max_position_embeddings: 512,
    tie_word_embeddings: true,
  });
  const dir = join(tempDir(), "qwen3-tiny");
  saveCheckpoint(dir, initModel(config, 7), { tokenizer: tok });
  const cfg = { chat_template: template, eos_token: eos, bos_token: "<｜begin▁of▁sentence｜>", pad_token: null };
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
  return dir;
}

test("chat template: the model's own template renders task prompts; SFT masks the reply and its end token", () => {
  const { tokenizer: tok } = loadModelDir(hfDir(CHATML));
  const expected =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
    `<|im_start|>user\n12+34\n${FORMAT_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n`;
  assert.equal(tok.decode(promptIds(tok, "12+34")), expected);
  assert.equal(tok.decode([endId(tok)]), "<|im_end|>");
  const ex = sftExample(tok, "12+34", "<think>4+2=6</think><answer>46</answer>");
  const reply = ex.ids.filter((_, i) => ex.mask[i] === 1);
  assert.equal(tok.decode(reply), "<think>4+2=6</think><answer>46</answer><|im_end|>");
  assert.equal(ex.mask.indexOf(1), promptIds(tok, "12+34").length);
});

test("chat template that opens <think>: the prompt ends inside the reasoning and completions are read with it", () => {
  const { tokenizer: tok } = loadModelDir(hfDir(OPENS_THINK, "<｜Assistant｜>"));
  assert.ok(tok.decode(promptIds(tok, "1+1")).endsWith("<｜Assistant｜><think>\n"));
  assert.equal(tok.chat!.opened, "<think>\n");
  const ex = sftExample(tok, "1+1", "<think>one and one</think><answer>2</answer>");
  const reply = tok.decode(ex.ids.filter((_, i) => ex.mask[i] === 1));
  assert.equal(reply, "one and one</think><answer>2</answer><｜Assistant｜>");
  const sampled = tok.encode("one and one</think><answer>2</answer>");
  assert.deepEqual(parseCompletion(completionText(tok, sampled)), {
    wellFormed: true,
    reasoning: "\none and one",
    answer: "2",
  });
});

test('"from": "hf:DIR": SFT then GRPO start from a Hugging Face directory and keep its chat template', () => {
  const dir = hfDir(CHATML),
    out = join(tempDir(), "run");
  const recipe = parseRecipe(
    {
      name: "byom-tiny",
      seed: 1,
      checkpointEvery: 2,
      stages: [
        { ...SFT_STAGE, from: `hf:${dir}` },
        { ...GRPO_STAGE, from: "sft" },
      ],
    },
    "byom-tiny",
  );
  const r = runRecipe(recipe, { outDir: out, resume: false, quiet: true });
  assert.equal(r.stopped ?? null, null);
  for (const s of ["sft", "grpo"]) {
    const ck = join(stageDir(out, s), "checkpoint");
    assert.equal(JSON.parse(readFileSync(join(ck, "config.json"), "utf8")).architectures[0], "Qwen3ForCausalLM");
    assert.ok(existsSync(join(ck, "tokenizer_config.json")), `${s} kept tokenizer_config.json`);
    assert.equal(loadModelDir(ck).tokenizer.chat?.endToken, "<|im_end|>");
  }
  const sftWeights = loadModelDir(join(stageDir(out, "sft"), "checkpoint")).model.params.get("model.norm.weight")!;
  assert.ok(
    sftWeights.data.some((x) => Math.abs(x - 1) > 1e-6),
    "SFT moved the Qwen3 weights",
  );
});

test("hf: inputs are checked when the recipe is read: a missing directory, a tokenizer too large, an unknown architecture", () => {
  const stage = { type: "sft", name: "sft", tasks: ["addition"], steps: 1 };
  assert.throws(
    () => parseRecipe({ name: "x", stages: [{ ...stage, from: "hf:/no/such/model" }] }, "x.json"),
    /x.json: stage "sft": "hf:\/no\/such\/model" has no config.json at \/no\/such\/model; expected a Hugging Face/,
  );
  const dir = hfDir(CHATML),
    cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, vocab_size: 50 }));
  assert.throws(
    () => parseRecipe({ name: "x", stages: [{ ...stage, from: `hf:${dir}` }] }, "x.json"),
    /tokenizer.json has ids up to \d+ but the embedding has 50 rows/,
  );
  writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["GPTNeoXForCausalLM"] }));
  assert.throws(
    () => parseRecipe({ name: "x", stages: [{ ...stage, from: `hf:${dir}` }] }, "x.json"),
    /architecture GPTNeoXForCausalLM is not supported; frugal runs LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/,
  );
});

test("LoRA from hf:DIR: only adapters train, saved in PEFT's format; export merged folds them in", () => {
  const dir = hfDir(CHATML),
    out = join(tempDir(), "run");
  const lora = { rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"] };
  const recipe = parseRecipe(
    {
      name: "byom-lora",
      seed: 2,
      checkpointEvery: 2,
      stages: [
        { ...SFT_STAGE, from: `hf:${dir}`, lr: 0.01, lora },
        { ...GRPO_STAGE, from: "sft", lora: { ...lora, targets: ["all-linear"] }, activationCheckpointing: true },
      ],
    },
    "byom-lora",
  );
  assert.equal(runRecipe(recipe, { outDir: out, resume: false, quiet: true }).stopped ?? null, null);
  const sftDir = join(stageDir(out, "sft"), "checkpoint");
  assert.equal(
    readFileSync(join(sftDir, "model.safetensors")).equals(readFileSync(join(dir, "model.safetensors"))),
    true,
    "the base weights are saved unchanged",
  );
  const peft = JSON.parse(readFileSync(join(sftDir, "adapter_config.json"), "utf8"));
  assert.deepEqual([peft.peft_type, peft.r, peft.lora_alpha, peft.target_modules], ["LORA", 4, 8, lora.targets]);
  const tensors = readSafetensors(join(sftDir, "adapter_model.safetensors")).tensors;
  assert.equal(tensors.size, 2 * 3); // one layer × three modules × (A, B)
  const B = tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!;
  assert.deepEqual(B.shape, [64, 4]);
  assert.ok(
    B.data.some((x) => x !== 0),
    "SFT trained lora_B away from its zero init",
  );
  // GRPO merged the SFT adapters into its base and trained fresh ones on every linear layer
  const grpo = loadModelDir(join(stageDir(out, "grpo"), "checkpoint")).model;
  assert.equal(grpo.lora!.adapters.size, 7);
  // its reference policy is saved as adapters over the shared base, not as a second copy of the model
  const grpoFiles = readdirSync(join(stageDir(out, "grpo"), "checkpoint"));
  assert.ok(grpoFiles.includes("ref-adapter.safetensors") && !grpoFiles.includes("ref.safetensors"), `${grpoFiles}`);
  // the CLI reads the adapted checkpoint (base + PEFT files) and prompts it through the model's template
  const sample = spawnSync(
    process.execPath,
    [
      cli,
      "sample",
      "--model",
      sftDir,
      "--prompt",
      "12+34",
      "--max-tokens",
      "6",
      "--temperature",
      "0",
      "--bf16",
      "--json",
    ],
    { encoding: "utf8" },
  );
  assert.equal(sample.status, 0, sample.stderr);
  const [one] = JSON.parse(sample.stdout) as { tokens: number; finishReason: string }[];
  assert.ok(one!.tokens <= 6 && ["stop", "length"].includes(one!.finishReason), sample.stdout);
  // export merged: a plain directory computing what the adapted model computes
  const merged = join(tempDir(), "merged"),
    r = spawnSync(process.execPath, [cli, "export", "merged", "--model", sftDir, "--out", merged], {
      encoding: "utf8",
    });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 adapters merged/);
  assert.ok(!existsSync(join(merged, "adapter_config.json")));
  const ids = Int32Array.from([5, 9, 14, 3]),
    a = E.noGrad(() => forward(loadModelDir(sftDir).model, ids, 1, 4)),
    b = E.noGrad(() => forward(loadModelDir(merged).model, ids, 1, 4));
  assert.ok(
    a.data.every((x, i) => Math.abs(x - b.data[i]!) < 1e-5),
    "merged logits equal adapted logits",
  );
});

test("LoRA: a target that names no module fails when the recipe is read", () => {
  assert.throws(
    () =>
      parseRecipe(
        { name: "x", stages: [{ ...SFT_STAGE, from: `hf:${hfDir(CHATML)}`, lora: { targets: ["qkv"] } }] },
        "x.json",
      ),
    /stages.0.lora.targets.0: Invalid option: expected one of "q_proj"\|"k_proj"/,
  );
});

test("LoRA GRPO stopped after two steps and resumed ends with the adapters of an uninterrupted run", () => {
  const base = hfDir(CHATML),
    cfg = GrpoConfig.parse({
      steps: 4,
      promptsPerStep: 2,
      groupSize: 3,
      maxNewTokens: 8,
      refreshRefEvery: 3, // the reference moves once, after the resume point: it must come back from the checkpoint
      lora: { rank: 4 },
      activationCheckpointing: true,
      bf16Base: true, // the frozen projections in bfloat16 only: saved as BF16, kept exactly through the resume
    });
  const source = taskSource(getTask("addition"), [2]);
  const io = (dir: string, stopAfter?: number): StageIO => {
    let steps = 0;
    return {
      name: "grpo",
      dir,
      seed: 5,
      checkpointEvery: 1,
      progress: () => void steps++,
      shouldStop: () => (stopAfter !== undefined && steps >= stopAfter ? "stopped for the test" : null),
    };
  };
  const init = () => loadModelDir(base);
  const full = join(tempDir(), "full"),
    part = join(tempDir(), "part");
  assert.equal(trainGrpo(io(full), init, source, cfg, cfg).stopped, null);
  assert.equal(trainGrpo(io(part, 2), init, source, cfg, cfg).stopped, "stopped for the test");
  assert.equal(trainGrpo(io(part), init, source, cfg, cfg).steps, 2, "the resumed run did the last two steps");
  for (const f of ["adapter_model.safetensors", "ref-adapter.safetensors", "model.safetensors"])
    assert.ok(
      readFileSync(join(full, "checkpoint", f)).equals(readFileSync(join(part, "checkpoint", f))),
      `${f} differs after the resume`,
    );
  const file = readFileSync(join(full, "checkpoint", "model.safetensors")),
    header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString("utf8"));
  assert.equal(header["model.layers.0.mlp.down_proj.weight"].dtype, "BF16", "the bf16 base is saved as BF16");
  assert.equal(header["model.norm.weight"].dtype, "F32", "norms stay float32");
  const widened = loadModelDir(join(full, "checkpoint")).model.params.get("model.layers.0.mlp.down_proj.weight")!;
  const original = loadModelDir(base).model.params.get("model.layers.0.mlp.down_proj.weight")!;
  assert.ok(
    widened.data.every((x, i) => Math.abs(x - original.data[i]!) <= Math.abs(original.data[i]!) / 256),
    "the saved base is the loaded one rounded to bfloat16",
  );
});
