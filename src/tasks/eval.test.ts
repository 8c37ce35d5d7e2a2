// The eval report's per-difficulty rows: each sample is counted under its own problem's difficulty.
// Sampling itself is covered by the pipeline's end-to-end tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { difficultyRows } from "./eval.js";

test("difficultyRows: pass@1, length and truncation per difficulty, k samples per problem", () => {
  // three problems (difficulties 3, 4, 3), k = 2: samples 0-1 are problem 0's, 2-3 problem 1's, 4-5 problem 2's
  const ps = [{ difficulty: 3 }, { difficulty: 4 }, { difficulty: 3 }];
  const s = (n: number, cut: boolean) => ({
    tokens: new Array<number>(n).fill(0),
    finishReason: cut ? "length" : "stop",
  });
  const samples = [s(10, false), s(20, false), s(100, true), s(100, true), s(30, false), s(40, true)];
  const rows = difficultyRows(ps, samples, [1, 0, 0, 0, 1, 1], [1, 0, 0], 2);
  assert.deepEqual(rows["3"], { n: 2, pass1: 0.75, greedyAccuracy: 0.5, meanLength: 25, truncationRate: 0.25 });
  assert.deepEqual(rows["4"], { n: 1, pass1: 0, greedyAccuracy: 0, meanLength: 100, truncationRate: 1 });
  assert.equal(difficultyRows(ps, samples, [1, 0, 0, 0, 1, 1], null, 2)["4"]!.greedyAccuracy, null);
});
