// The eval report's per-difficulty rows: each sample is counted under its own problem's difficulty; pass@j.
// Sampling itself is covered by the pipeline's end-to-end tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { difficultyRows, passAt, passAtJ } from "./eval.js";

test("difficultyRows: pass@1, length and truncation per difficulty, k samples per problem", () => {
  // three problems (difficulties 3, 4, 3), k = 2: samples 0-1 are problem 0's, 2-3 problem 1's, 4-5 problem 2's
  const ps = [{ difficulty: 3 }, { difficulty: 4 }, { difficulty: 3 }];
  const s = (n: number, cut: boolean) => ({
    tokens: new Array<number>(n).fill(0),
    finishReason: cut ? "length" : "stop",
  });
  const samples = [s(10, false), s(20, false), s(100, true), s(100, true), s(30, false), s(40, true)];
  const rows = difficultyRows(ps, samples, [1, 0, 0, 0, 1, 1], [1, 0, 0], 2);
  // difficulty 3: problem 0 solved once of 2, problem 2 twice, so pass@2 = (1 + 1) / 2
  const at3 = { "2": 1 },
    at4 = { "2": 0 };
  assert.deepEqual(rows["3"], {
    n: 2,
    pass1: 0.75,
    passAt: at3,
    greedyAccuracy: 0.5,
    meanLength: 25,
    truncationRate: 0.25,
  });
  assert.deepEqual(rows["4"], { n: 1, pass1: 0, passAt: at4, greedyAccuracy: 0, meanLength: 100, truncationRate: 1 });
  assert.equal(difficultyRows(ps, samples, [1, 0, 0, 0, 1, 1], null, 2)["4"]!.greedyAccuracy, null);
});

test("passAtJ: Chen et al.'s estimator against counting every j-subset", () => {
  // n = 6 samples, c = 2 correct: of the C(6,3) = 20 three-sample subsets, C(4,3) = 4 miss both, so 16/20
  assert.ok(Math.abs(passAtJ(6, 2, 3) - 16 / 20) < 1e-12);
  assert.ok(Math.abs(passAtJ(6, 2, 1) - 2 / 6) < 1e-12); // pass@1 is the share correct
  assert.equal(passAtJ(6, 0, 6), 0);
  assert.equal(passAtJ(6, 1, 6), 1);
  assert.equal(passAtJ(6, 5, 2), 1); // any two samples hold a correct one
  assert.throws(() => passAtJ(4, 1, 5), /internal: passAtJ/);
});

test("passAt: j = 2, 4, … and k, averaged over the problems named", () => {
  // k = 6: problem 0 solved 2 of 6, problem 1 none
  const acc = [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
  const all = passAt(acc, 6, [0, 1]);
  assert.deepEqual(Object.keys(all), ["2", "4", "6"]);
  assert.ok(Math.abs(all["2"]! - (1 - 6 / 15) / 2) < 1e-12); // C(4,2)/C(6,2) = 6/15 miss
  assert.equal(all["6"], 0.5);
  assert.deepEqual(passAt(acc, 6, [0])["6"], 1);
  assert.deepEqual(passAt([1, 0], 1, [0, 1]), {});
});
