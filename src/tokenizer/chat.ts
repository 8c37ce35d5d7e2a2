// The chat template: <|user|>{prompt}<|assistant|>{completion}<|end|>, where a completion is
// <think>{reasoning}</think><answer>{answer}</answer>. Builds token sequences and the SFT loss mask
// (1 on the assistant's tokens and the closing <|end|>, 0 on the prompt). No model or sampling here.
import { SPECIAL, type Tokenizer } from "./tokenizer.js";

export function renderCompletion(reasoning: string, answer: string): string {
  return `<think>${reasoning}</think><answer>${answer}</answer>`;
}

/** Token ids of the prompt part, ending with <|assistant|> (what generation starts from). */
export function promptIds(tok: Tokenizer, prompt: string): number[] {
  return [tok.tokenId(SPECIAL.user), ...tok.encode(prompt), tok.tokenId(SPECIAL.assistant)];
}

export interface SftExample {
  ids: number[];
  mask: number[];
}

/** Prompt + completion + <|end|>, with mask 1 exactly on the completion and <|end|>. */
export function sftExample(tok: Tokenizer, prompt: string, completion: string): SftExample {
  const p = promptIds(tok, prompt),
    c = [...tok.encode(completion), tok.tokenId(SPECIAL.end)];
  return { ids: [...p, ...c], mask: [...p.map(() => 0), ...c.map(() => 1)] };
}
