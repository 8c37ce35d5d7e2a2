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

/** A model directory with its tokenizer; `hint` ends the error when tokenizer.json is missing. */
export function loadModelDir(dir: string, hint = "frugal needs one to turn text into tokens"): LoadedModel {
  const ck = loadCheckpoint(dir);
  if (!ck.tokenizer) throw new FrugalError("CHECKPOINT", `${ck.dir} has no tokenizer.json; ${hint}`);
  return { model: ck.model, tokenizer: loadTokenizer(ck.tokenizer), meta: ck.meta, dir: ck.dir };
}
