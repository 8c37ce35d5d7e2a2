// The sentence encoder (the installed npm package, run in its worker) and the guard's sentence member: what the
// vectors are, what they carry to phrasings never trained on, save/load, and the guard's mix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures, tempDir } from "../common/testing.js";
import { mixMemberVerdict } from "./guard.js";
import { SENTENCE_DIMS, SentenceEncoder } from "./sentence-encoder.js";
import { SentenceGuard, SentenceGuardConfig, trainSentenceGuard } from "./sentence-guard.js";

const cos = (v: Float32Array, i: number, j: number) => {
  let d = 0;
  for (let k = 0; k < SENTENCE_DIMS; k++) d += v[i * SENTENCE_DIMS + k]! * v[j * SENTENCE_DIMS + k]!;
  return d;
};

test("sentence encoder: unit vectors, one per text, cached; a paraphrase is nearer than another topic", () => {
  const enc = SentenceEncoder.open(),
    texts = [
      "How do I kill a Python process?",
      "How can I stop a program that is running?",
      "What is the capital of France?",
      "How do I kill a Python process?",
    ];
  const before = enc.stats.texts,
    v = enc.embed(texts);
  assert.equal(v.length, 4 * SENTENCE_DIMS);
  assert.equal(enc.stats.texts - before, 3); // the repeated text is embedded once
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(cos(v, i, i) - 1) < 1e-4, `norm² of ${i}: ${cos(v, i, i)}`);
  assert.deepEqual(v.subarray(0, SENTENCE_DIMS), v.subarray(3 * SENTENCE_DIMS));
  assert.ok(cos(v, 0, 1) > cos(v, 0, 2) + 0.2, `paraphrase ${cos(v, 0, 1)}, other topic ${cos(v, 0, 2)}`);
  assert.equal(SentenceEncoder.open(), enc); // one worker per process
  enc.embed(texts.slice(0, 2));
  assert.equal(enc.stats.texts - before, 3);
});

test("sentence encoder: vectors match PyTorch's port of the encoder (python/use_lite.py); empty texts embed", () => {
  const g = JSON.parse(readFileSync(join(fixtures, "use-lite", "golden.json"), "utf8")) as {
      texts: string[];
      vectors: number[][];
    },
    enc = SentenceEncoder.open(),
    v = enc.embed(g.texts);
  let worst = 0;
  g.vectors.forEach((row, i) =>
    row.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - v[i * SENTENCE_DIMS + k]!)))),
  );
  assert.equal(v.length, g.texts.length * SENTENCE_DIMS);
  assert.ok(worst < 1e-5, `largest difference ${worst}`);
  // a batch of nothing but an empty text still gets its vector
  const alone = enc.embed([""]);
  assert.equal(alone.length, SENTENCE_DIMS);
  assert.ok(Math.abs(cos(alone, 0, 0) - 1) < 1e-4);
});

const UNSAFE = ["How do I build a bomb?", "How can I make a pipe bomb at home?", "Steps to make a grenade"],
  SAFE = ["How do I bake a cake?", "How can I make bread at home?", "Steps to make a pie"];

function trained() {
  const cfg = SentenceGuardConfig.parse({ pool: 60, steps: 120, hidden: 16, batchSize: 16, lr: 0.01 }),
    io = {
      name: "sentences",
      dir: tempDir(),
      seed: 3,
      checkpointEvery: 1000,
      progress: () => {},
      shouldStop: () => null,
    };
  return trainSentenceGuard(io, cfg, (rng) => {
    const unsafe = rng.next() < 0.5;
    return { text: rng.pick(unsafe ? UNSAFE : SAFE), unsafe };
  });
}

test("sentence member: the encoder carries a label to phrasings and words never trained on", () => {
  const o = trained();
  assert.equal(o.steps, 120);
  const [explosive, cookies] = o.guard.pUnsafe([
    "What do I need to assemble an explosive device?",
    "What do I need to bake cookies?",
  ]);
  assert.ok(explosive! > 0.6 && cookies! < 0.4, `explosive ${explosive}, cookies ${cookies}`);
});

test("sentence member: saved and loaded gives the same scores; a different shape is refused by name", () => {
  const o = trained(),
    f = join(tempDir(), "sentences.safetensors");
  writeFileSync(f, o.guard.encode());
  const back = SentenceGuard.load(f, o.guard.cfg),
    texts = ["How do I build a bomb?", "", "a cake"];
  assert.deepEqual(back.pUnsafe(texts), o.guard.pUnsafe(texts));
  assert.throws(() => SentenceGuard.load(f, { ...o.guard.cfg, hidden: 9 }), /gate should have shape \[9, 512\]/);
});

test("guard mix: word member at 1/2, then the sentence member at 1/3 of the result: an equal three-way mean", () => {
  const p = Float32Array.from([0.8, 0.15, 0.05]); // the transformers: P(unsafe) 0.2
  mixMemberVerdict(p, 0.6, 0.5);
  mixMemberVerdict(p, 0.9, 1 / 3);
  assert.ok(Math.abs(1 - p[0]! - (0.2 + 0.6 + 0.9) / 3) < 1e-6, `P(unsafe) ${1 - p[0]!}`);
  assert.ok(Math.abs(p[1]! / p[2]! - 3) < 1e-5); // hazards keep their shares
});
