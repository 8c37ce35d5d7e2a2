// The referee's legal tokens at each trained position of a completion, for a policy renormalised over them
// (GRPO's legalPolicy): softmax over the tokens the task's referee allows, the distribution the sampler draws
// from when it redraws refused picks. Reads the task's text-level referee; does not sample or train.
import type { Calculator } from "../tasks/task.js";
import { completionText } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

const vocabCache = new WeakMap<Tokenizer, string[]>();

/** Each token id's text, decoded once per tokenizer. */
function vocabOf(tok: Tokenizer): string[] {
  let v = vocabCache.get(tok);
  if (!v) vocabCache.set(tok, (v = Array.from({ length: tok.vocabSize }, (_, i) => tok.decode([i]))));
  return v;
}

/**
 * For completion token j in `at` (completion indices, ascending): the tokens the referee allows after the
 * completion's first j tokens, as a V-long 0/1 mask; null where it allows every token, false where it refuses the
 * token the completion holds (a pick the referee let stand because it refused everything).
 */
export function legalMasks(
  tok: Tokenizer,
  calc: Calculator,
  completion: readonly number[],
  at: readonly number[],
): (Uint8Array | null | false)[] {
  const allows = calc.allows;
  if (!allows) return at.map(() => null);
  const vocab = vocabOf(tok),
    out: (Uint8Array | null | false)[] = [];
  let text = completionText(tok, []),
    done = 0;
  for (const j of at) {
    for (; done < j; done++) text += vocab[completion[done]!] ?? tok.decode([completion[done]!]);
    const mask = calc.legal?.(text, vocab) ?? Uint8Array.from(vocab, (s) => (allows(text, s) ? 1 : 0));
    const n = mask.reduce((a, b) => a + b, 0);
    const held = completion[j];
    out.push(n === vocab.length ? null : held !== undefined && !mask[held] ? false : mask);
  }
  return out;
}
