// Char and byte-level BPE tokenizers: round trips, tokenizer.json that @huggingface/tokenizers reads
// identically, deterministic BPE training, special tokens and the chat template's loss mask.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { CharTokenizer, loadTokenizer, SPECIAL } from "./tokenizer.js";
import { extendBpe, trainBpe } from "./bpe-train.js";
import { sftExample, promptIds, renderCompletion } from "./chat.js";

const chars = "0123456789+-*/=()<>., abcdefghijklmnopqrstuvwxyz\n";

test("char tokenizer: round trip, tags are single tokens, unknown chars map to <|unk|>", () => {
  const tok = CharTokenizer.fromChars(chars);
  const text = "<think>12+3=15</think><answer>15</answer>";
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  assert.equal(ids[0], tok.tokenId("<think>"));
  assert.equal(ids.length, 4 + "12+3=15".length + "15".length);
  assert.deepEqual(tok.encode("€"), [tok.tokenId(SPECIAL.unk)]);
});

test("char tokenizer.json is read identically by @huggingface/tokenizers and survives a JSON round trip", () => {
  const tok = CharTokenizer.fromChars(chars);
  const json = JSON.parse(JSON.stringify(tok.toJSON()));
  const hf = new HfTokenizer(json, {});
  for (const s of ["<|user|>what is 7*8<|assistant|><think>7*8=56</think><answer>56</answer><|end|>", "a b\nc", ""]) {
    assert.deepEqual(hf.encode(s, { add_special_tokens: false }).ids, tok.encode(s));
    if (s) assert.equal(hf.decode(tok.encode(s), { skip_special_tokens: false }), s);
  }
  const again = loadTokenizer(json);
  assert.equal(again.kind, "char");
  assert.deepEqual(again.encode("12+3"), tok.encode("12+3"));
});

test("byte-level BPE: deterministic training, lossless round trip on any text, merges shorten text", () => {
  const corpus = Array.from(
    { length: 200 },
    (_, i) => `How do I kill a Python process number ${i}? Write a poem about the sea and the sky.`,
  );
  const a = trainBpe(corpus, 400),
    b = trainBpe(corpus, 400);
  assert.deepEqual(a.toJSON(), b.toJSON());
  for (const s of [
    "How do I kill a Python process?",
    "naïve café — 東京 🙂 \u0000\u0001",
    "  spaces   and\ttabs\n",
    "",
  ]) {
    assert.equal(a.decode(a.encode(s)), s);
  }
  assert.ok(a.encode("How do I kill a Python process").length < "How do I kill a Python process".length / 2);
  const loaded = loadTokenizer(JSON.parse(JSON.stringify(a.toJSON())));
  assert.equal(loaded.kind, "bpe");
  assert.deepEqual(loaded.encode("Write a poem"), a.encode("Write a poem"));
  assert.ok(a.tokenId(SPECIAL.end) >= 0);
  assert.throws(() => trainBpe(corpus, 10), /vocab size must be an integer ≥ 265/);
});

test("BPE with singleDigits: no merge holds a digit, so numbers read one digit per token (as the char tokenizer does)", () => {
  const corpus = Array.from(
    { length: 300 },
    (_, i) => `carry ${i % 7} then 12+34=46, 1000 and 2024; the total is ${i * 37}`,
  );
  const plain = trainBpe(corpus, 500),
    single = trainBpe(corpus, 500, { singleDigits: true });
  const merges = (t: ReturnType<typeof trainBpe>) => (t.toJSON() as { model: { merges: string[] } }).model.merges;
  assert.ok(
    merges(plain).some((m) => /\d/.test(m)),
    "without the option, digits merge (the control)",
  );
  assert.ok(!merges(single).some((m) => /\d/.test(m)));
  const trace = "<think>3+4+0=7,5+6+1=12,carry 1</think><answer>1297</answer>";
  const digitsOf = (t: ReturnType<typeof trainBpe>) =>
    t
      .encode(trace)
      .map((id) => t.decode([id]))
      .filter((x) => /\d/.test(x));
  assert.deepEqual(digitsOf(single), [...trace.replace(/[^\d]/g, "")]);
  assert.equal(single.decode(single.encode(trace)), trace);
  assert.ok(single.encode("carry then the total").length < "carry then the total".length / 2, "words still merge");
});

test("extendBpe: learning more merges on top of a BPE keeps every old id, equals training the larger size at once on the same text, spells new tokens in old ids", () => {
  const corpus = Array.from(
    { length: 200 },
    (_, i) => `How do I kill a Python process number ${i}? Write a poem about the sea, 12+34=46.`,
  );
  const small = trainBpe(corpus, 320, { singleDigits: true }),
    big = trainBpe(corpus, 380, { singleDigits: true });
  const { tokenizer, pieces } = extendBpe(small, corpus, 380, { singleDigits: true });
  assert.deepEqual(
    tokenizer.toJSON(),
    big.toJSON(),
    "continuing from the 320-token merges reaches the same 380-token tokenizer",
  );
  const vocab = (t: ReturnType<typeof trainBpe>) =>
    (t.toJSON() as { model: { vocab: Record<string, number> } }).model.vocab;
  for (const [tok, id] of Object.entries(vocab(small))) assert.equal(vocab(tokenizer)[tok], id, tok);
  for (let id = small.vocabSize; id < tokenizer.vocabSize; id++) {
    const ps = pieces(id);
    assert.ok(ps.length >= 2 && ps.every((q) => q < small.vocabSize), `token ${id} is spelled by old ids`);
    assert.equal(small.decode(ps), tokenizer.decode([id]));
  }
  // on other text the extension learns other merges, still on top of the old ones
  const other = extendBpe(
    small,
    Array.from({ length: 20 }, () => "the grandmother tells a bedtime story"),
    340,
  );
  assert.ok(other.tokenizer.encode("grandmother").length < small.encode("grandmother").length);
  assert.throws(
    () => extendBpe(CharTokenizer.fromChars(chars), corpus, 400),
    /only a byte-level BPE made by frugal can be extended/,
  );
  assert.throws(() => extendBpe(small, corpus, 300), /smaller than the tokenizer it extends/);
});

test("chat template: prompt ends with <|assistant|>; loss mask covers exactly the completion and <|end|>", () => {
  const tok = CharTokenizer.fromChars(chars);
  const ex = sftExample(tok, "1+1", renderCompletion("1+1=2", "2"));
  const p = promptIds(tok, "1+1");
  assert.deepEqual(ex.ids.slice(0, p.length), p);
  assert.equal(p[p.length - 1], tok.tokenId(SPECIAL.assistant));
  assert.deepEqual(
    ex.mask.slice(0, p.length),
    p.map(() => 0),
  );
  assert.ok(ex.mask.slice(p.length).every((m) => m === 1));
  assert.equal(ex.ids[ex.ids.length - 1], tok.tokenId(SPECIAL.end));
  assert.equal(tok.decode(ex.ids), "<|user|>1+1<|assistant|><think>1+1=2</think><answer>2</answer><|end|>");
});

test("bad tokenizer.json gives a clear error", () => {
  assert.throws(() => loadTokenizer(null), /must be a JSON object/);
  assert.throws(() => loadTokenizer({ version: "1.0" }), /no "model" section/);
});
