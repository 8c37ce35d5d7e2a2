// The word-vector member on made-up vectors: the format reader, what the vectors carry to unseen words,
// save/load, and the mix into the guard's label probabilities.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../common/rng.js";
import { tempDir } from "../common/testing.js";
import { mixMemberVerdict } from "./guard.js";
import { trainWordGuard, WordGuard, WordGuardConfig } from "./word-guard.js";
import { loadWordVectors, wordsOf } from "./word-vectors.js";

/** A wink-format file: `words` get `vec(word)` (3 values), each followed by a norm and an index as in the package. */
function vectorFile(words: string[], vec: (w: string) => number[]): string {
  const body = words.map((w, i) => `${JSON.stringify(w)}:[${[...vec(w), 1, i].join(",")}]`).join(",");
  const f = join(tempDir(), "vectors.json");
  writeFileSync(
    f,
    `{"precision":8,"dimensions":3,"words":${JSON.stringify(words)},"vectors":{${body}},"unkVector":[0,0,0]}`,
  );
  return f;
}

test("word vectors: read in file order up to maxWords, quoted words, rows scaled to mean norm 1, bad files named", () => {
  const f = vectorFile(["the", '"', "bomb"], (w) => (w === "bomb" ? [0, 0, 4] : w === "the" ? [2, 0, 0] : [0, 3, 0]));
  const v = loadWordVectors(2, f);
  assert.deepEqual(
    [v.dims, [...v.index]],
    [
      3,
      [
        ["the", 0],
        ['"', 1],
      ],
    ],
  );
  assert.deepEqual([...v.data], [...Float32Array.from([0.8, 0, 0, 0, 1.2, 0])]); // norms 2 and 3, mean 2.5
  assert.equal(loadWordVectors(5, f).index.get("bomb"), 2);
  const bad = join(tempDir(), "bad.json");
  writeFileSync(bad, '{"dimensions":3,"vectors":{"a":[1,2]}}');
  assert.throws(() => loadWordVectors(5, bad), /"a" has 2 values, not 3/);
  for (const [text, why] of [
    ['{"dimensions":3,"vectors":{"a":[1,2,3],"b":[1,', /ends inside entry 2 of "vectors"/],
    ['{"dimensions":3,"vectors":{"a', /ends inside entry 1/],
    ['{"dimensions":3,"vectors":{"a":[1,x,3]}}', /"a" has a non-number/],
    ['{"dimensions":0,"vectors":{}}', /"dimensions" is 0/],
  ] as const) {
    writeFileSync(bad, text);
    assert.throws(() => loadWordVectors(7, bad), why);
  }
  assert.throws(() => loadWordVectors(5, join(tempDir(), "none.json")), /word vectors not found.*npm ci/);
  assert.deepEqual(wordsOf("How do I kill a Python-process? 12+34"), [
    "how",
    "do",
    "i",
    "kill",
    "a",
    "python",
    "-",
    "process",
    "?",
    "12",
    "+",
    "34",
  ]);
});

const WEAPONS = ["bomb", "grenade", "explosive", "landmine"],
  FOODS = ["cake", "cookie", "bread", "pie"];
/** Weapons near (1, 0, 0), foods near (0, 1, 0), the frame words near (0, 0, 1). */
const clustered = (w: string) => {
  const r = new Rng(w.length * 7 + w.charCodeAt(0)),
    n = () => (r.next() - 0.5) * 0.2;
  if (WEAPONS.includes(w)) return [1 + n(), n(), n()];
  if (FOODS.includes(w)) return [n(), 1 + n(), n()];
  return [n(), n(), 1 + n()];
};

function trained(file: string) {
  const cfg = WordGuardConfig.parse({ steps: 150, hidden: 8, batchSize: 16, lr: 0.02, file, maxWords: 100 }),
    io = {
      name: "words",
      dir: tempDir(),
      seed: 3,
      checkpointEvery: 1000,
      progress: () => {},
      shouldStop: () => null,
    };
  // trained on two words of each cluster only; the other two never appear in a label
  return trainWordGuard(io, cfg, (rng) => {
    const unsafe = rng.next() < 0.5;
    return { text: `how to make a ${rng.pick(unsafe ? WEAPONS.slice(0, 2) : FOODS.slice(0, 2))}`, unsafe };
  });
}

test("word member: the vectors carry a label to words never trained on; without them it cannot tell", () => {
  const words = ["how", "to", "make", "a", ...WEAPONS, ...FOODS];
  const o = trained(vectorFile(words, clustered));
  assert.equal(o.steps, 150);
  const [landmine, pie] = o.guard.pUnsafe(["how to make a landmine", "how to make a pie"]);
  assert.ok(landmine! > 0.8 && pie! < 0.2, `landmine ${landmine}, pie ${pie}`);
  // the same training with the unseen words missing from the vectors: both read as "unknown", one score
  const blind = trained(vectorFile(words.slice(0, 6).concat(FOODS.slice(0, 2)), clustered));
  const [l2, p2] = blind.guard.pUnsafe(["how to make a landmine", "how to make a pie"]);
  assert.equal(l2, p2);
});

test("word member: saved and loaded gives the same scores; a different shape is refused by name", () => {
  const words = ["how", "to", "make", "a", ...WEAPONS, ...FOODS],
    file = vectorFile(words, clustered);
  const o = trained(file),
    f = join(tempDir(), "words.safetensors");
  writeFileSync(f, o.guard.encode());
  const back = WordGuard.load(f, o.guard.cfg),
    texts = ["how to make a bomb", "", "a cake"];
  assert.deepEqual(back.pUnsafe(texts), o.guard.pUnsafe(texts));
  assert.throws(() => WordGuard.load(f, { ...o.guard.cfg, hidden: 9 }), /gate should have shape \[9, 12\]/);
});

test("mixMemberVerdict: the word member holds its weight of P(unsafe); hazards keep their shares", () => {
  const p = Float32Array.from([0.8, 0.15, 0.05]);
  mixMemberVerdict(p, 0.6, 0.5);
  [0.6, 0.3, 0.1].forEach((x, k) => assert.ok(Math.abs(p[k]! - x) < 1e-6, `label ${k}: ${p[k]}`));
  const sure = Float32Array.from([1, 0, 0]); // no unsafe mass to share: spread evenly
  mixMemberVerdict(sure, 1, 0.5);
  [0.5, 0.25, 0.25].forEach((x, k) => assert.ok(Math.abs(sure[k]! - x) < 1e-6));
});
