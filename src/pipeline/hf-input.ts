// A stage's starting point given as "hf:DIR": a local Hugging Face model directory instead of an earlier stage.
// Checked when the recipe is read (config, weight files, tokenizer and its size; no weights loaded), so a bad directory fails
// before any stage runs. DIR is resolved against the working directory. No downloading.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FrugalError } from "../common/errors.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { readJson, weightFiles } from "../model/checkpoint.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";

export const HF_PREFIX = "hf:";

export function isHfInput(input: string): boolean {
  return input.startsWith(HF_PREFIX);
}

/** The directory an "hf:DIR" input names. */
export function hfDir(input: string): string {
  return resolve(input.slice(HF_PREFIX.length));
}

/** The model config of an "hf:DIR" input, after checking the directory holds a whole model; `source` for errors. */
export function checkHfInput(input: string, source: string): ModelConfig {
  const dir = hfDir(input);
  if (!existsSync(join(dir, "config.json")))
    throw new FrugalError(
      "RECIPE",
      `${source}: "${input}" has no config.json at ${dir}; expected a Hugging Face model directory ` +
        "(config.json, model.safetensors or its shards, tokenizer.json)",
    );
  const config = parseModelConfig(readJson(join(dir, "config.json")), join(dir, "config.json"));
  weightFiles(dir);
  if (!existsSync(join(dir, "tokenizer.json")))
    throw new FrugalError("RECIPE", `${source}: "${input}" has no tokenizer.json at ${dir}; frugal needs one`);
  const tok = loadTokenizer(readJson(join(dir, "tokenizer.json")));
  if (tok.vocabSize > config.vocab_size)
    throw new FrugalError(
      "TOKENIZER",
      `${source}: "${input}": tokenizer.json has ids up to ${tok.vocabSize - 1} but the embedding has ` +
        `${config.vocab_size} rows (config.json vocab_size); the tokenizer belongs to another model`,
    );
  return config;
}
