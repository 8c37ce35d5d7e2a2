// The chat format of a prompt and its completion. frugal's own: <|user|>{prompt}<|assistant|>{completion}<|end|>;
// a Hugging Face model's: its chat template (template.ts) and its end-of-turn token. A completion is
// <think>{reasoning}</think><answer>{answer}</answer>. Builds token sequences and the SFT loss mask (1 on the
// assistant's tokens and the closing end token, 0 on the prompt). No model or sampling here.
import { SPECIAL, type Tokenizer } from "./tokenizer.js";

export function renderCompletion(reasoning: string, answer: string): string {
  return `<think>${reasoning}</think><answer>${answer}</answer>`;
}

/** Token ids of the prompt part, ending where the assistant's reply starts (what generation starts from). */
export function promptIds(tok: Tokenizer, prompt: string): number[] {
  if (tok.chat) return tok.encode(tok.chat.render(prompt));
  return [tok.tokenId(SPECIAL.user), ...tok.encode(prompt), tok.tokenId(SPECIAL.assistant)];
}

/** The token that ends the assistant's turn: a stop token for sampling, the last supervised token in SFT. */
export function endId(tok: Tokenizer): number {
  return tok.tokenId(tok.chat ? tok.chat.endToken : SPECIAL.end);
}

/** The padding token of batched sequences. */
export function padId(tok: Tokenizer): number {
  return tok.tokenId(tok.chat ? tok.chat.padToken : SPECIAL.pad);
}

/** A sampled completion as text, including what the prompt opened (a template ending in <think>). */
export function completionText(tok: Tokenizer, ids: readonly number[]): string {
  return (tok.chat?.opened ?? "") + tok.decode(ids);
}

export interface SftExample {
  ids: number[];
  mask: number[];
}

/** Prompt + completion + end token, with mask 1 exactly on the completion and the end token. */
export function sftExample(tok: Tokenizer, prompt: string, completion: string): SftExample {
  const opened = tok.chat?.opened.trim();
  // the template already wrote <think>: the completion goes on after it
  if (opened && completion.startsWith(opened)) completion = completion.slice(opened.length).trimStart();
  return sftExampleOf(tok, prompt, tok.encode(completion));
}

/** Prompt + the completion's token ids as given (e.g. as sampled) + end token, masked as sftExample. */
export function sftExampleOf(tok: Tokenizer, prompt: string, completionIds: readonly number[]): SftExample {
  const p = promptIds(tok, prompt),
    c = [...completionIds, endId(tok)];
  return { ids: [...p, ...c], mask: [...p.map(() => 0), ...c.map(() => 1)] };
}
