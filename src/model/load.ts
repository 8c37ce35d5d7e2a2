// The one loader for a model with its tokenizer: a checkpoint directory (frugal's or a Hugging Face one)
// read by checkpoint.ts, its tokenizer.json turned into a Tokenizer. Every command and stage that needs
// text in and out of a model loads it here; a tokenizer_config.json with a chat_template gives it the model's
// own chat format. No training state (optimizer, RNG) here: see checkpoint.ts.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FrugalError } from "../common/errors.js";
import { chatFormat } from "../tokenizer/template.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/tokenizer.js";
import { loadCheckpoint, type FrugalMeta } from "./checkpoint.js";
import type { Model } from "./transformer.js";

export interface LoadedModel {
  model: Model;
  tokenizer: Tokenizer;
  /** frugal.json, or null for a directory frugal did not write */
  meta: FrugalMeta | null;
  /** the directory actually read (a crashed save's .old copy when only that exists) */
  dir: string;
}

/** Throws when the tokenizer has ids past the embedding's rows; `where` names the directory in the error. */
export function checkTokenizerFits(tokenizer: Tokenizer, rows: number, where: string): void {
  if (tokenizer.vocabSize > rows)
    throw new FrugalError(
      "TOKENIZER",
      `${where}: tokenizer.json has ids up to ${tokenizer.vocabSize - 1} but the embedding has ${rows} rows ` +
        "(config.json vocab_size); the tokenizer belongs to another model",
    );
}

/**
 * A model directory with its tokenizer. A directory without tokenizer.json is a CHECKPOINT error, or the
 * caller's own error when it passes `missingTokenizer` (a guard says what a guard checkpoint needs).
 */
export function loadModelDir(dir: string, missingTokenizer?: (dir: string) => FrugalError): LoadedModel {
  const ck = loadCheckpoint(dir);
  if (!ck.tokenizer)
    throw (
      missingTokenizer?.(dir) ??
      new FrugalError("CHECKPOINT", `${ck.dir} has no tokenizer.json; frugal needs one to turn text into tokens`)
    );
  const tokenizer = loadTokenizer(ck.tokenizer);
  checkTokenizerFits(tokenizer, ck.model.config.vocab_size, ck.dir);
  const cfgFile = join(ck.dir, "tokenizer_config.json");
  if (existsSync(cfgFile)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgFile, "utf8"));
    } catch (e) {
      throw new FrugalError("TOKENIZER", `${cfgFile} is not valid JSON: ${(e as Error).message}`);
    }
    const chat = chatFormat(raw, cfgFile);
    if (chat) {
      for (const t of [chat.endToken, chat.padToken]) tokenizer.tokenId(t); // both must be tokens of this vocabulary
      tokenizer.chat = chat;
    }
  }
  return { model: ck.model, tokenizer, meta: ck.meta, dir: ck.dir };
}
