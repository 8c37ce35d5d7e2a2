// A stage's starting point given as "hf:DIR": a local Hugging Face model directory instead of an earlier stage.
// Checked when the recipe is read (config, weight files, tokenizer and its size; no weights loaded), so a bad directory fails
// before any stage runs. DIR is resolved against the working directory. No downloading.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FrugalError } from "../common/errors.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { readJson, weightFiles } from "../model/checkpoint.js";
import { checkTokenizerFits } from "../model/load.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";

export const HF_PREFIX = "hf:";

export function isHfInput(input: string): boolean {
  return input.startsWith(HF_PREFIX);
}

/** The directory an "hf:DIR" input names. */
export function hfDir(input: string): string {
  return resolve(input.slice(HF_PREFIX.length));
}

/** The model config of an "hf:DIR" input (config.json only); `source` names the stage in errors. */
export function hfConfig(input: string, source: string): ModelConfig {
  const dir = hfDir(input);
  if (!existsSync(join(dir, "config.json")))
    throw new FrugalError(
      "RECIPE",
      `${source}: "${input}" has no config.json at ${dir}; expected a Hugging Face model directory ` +
        "(config.json, model.safetensors or its shards, tokenizer.json)",
    );
  return parseModelConfig(readJson(join(dir, "config.json")), join(dir, "config.json"));
}

/** hfConfig, after checking the directory holds a whole model: weight files, a tokenizer that fits. */
export function checkHfInput(input: string, source: string): ModelConfig {
  const dir = hfDir(input),
    config = hfConfig(input, source);
  weightFiles(dir);
  if (!existsSync(join(dir, "tokenizer.json")))
    throw new FrugalError("RECIPE", `${source}: "${input}" has no tokenizer.json at ${dir}; frugal needs one`);
  checkTokenizerFits(loadTokenizer(readJson(join(dir, "tokenizer.json"))), config.vocab_size, `${source}: "${input}"`);
  return config;
}
