// The one loader for a model with its tokenizer: a checkpoint directory (frugal's or a Hugging Face one)
// read by checkpoint.ts, its tokenizer.json turned into a Tokenizer. Every command and stage that needs
// text in and out of a model loads it here. No training state (optimizer, RNG) here: see checkpoint.ts.
import { FrugalError } from "../common/errors.js";
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
  return { model: ck.model, tokenizer: loadTokenizer(ck.tokenizer), meta: ck.meta, dir: ck.dir };
}
