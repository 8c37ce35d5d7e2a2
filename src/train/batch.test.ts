// Chunked batches: the plan covers every row once, pads less than one batch, balances ranks, and the gradients
// summed over ranks' chunks equal one padded batch's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import { initModel } from "../model/transformer.js";
import { trainableParams } from "../model/lora.js";
import { tinyLlamaConfig } from "../model/testing.js";
import {
  chunkedLossAndBackward,
  chunkPositions,
  lossAndBackward,
  makeBatch,
  planChunks,
  rowTargets,
  wholeRowBatches,
} from "./batch.js";

test("planChunks: every row once, longest first round the ranks, chunks of like length, at most maxRows", () => {
  const rng = new Rng(3),
    lengths = Array.from({ length: 33 }, () => 2 + Math.floor(rng.next() * 600));
  lengths.push(1); // predicts nothing: left out
  for (const size of [1, 2, 3]) {
    const plan = planChunks(lengths, 512, size, 6);
    const rows = plan.flat(2).sort((a, b) => a - b);
    assert.deepEqual(rows, [...Array(33).keys()], `size ${size}: every row with a target, once`);
    const perRank = plan.map((p) => p.flat().length);
    assert.ok(Math.max(...perRank) - Math.min(...perRank) <= 1, `size ${size}: rows ${perRank}`);
    for (const chunk of plan.flat()) {
      assert.ok(chunk.length <= 6);
      for (let k = 1; k < chunk.length; k++) assert.ok(lengths[chunk[k]!]! <= lengths[chunk[k - 1]!]!, "longest first");
    }
    const padded = plan.flat().reduce((a, c) => a + chunkPositions(c, lengths, 512), 0);
    assert.ok(padded < 33 * 512 * 0.8, `size ${size}: ${padded} positions against ${33 * 512} in one batch`);
  }
  // one long row and many short ones: the long row gets its own chunk rather than padding the others to it
  assert.deepEqual(planChunks([600, 20, 20, 20, 20, 20, 20, 20], 640, 1), [[[0], [1, 2, 3, 4, 5, 6, 7]]]);
});

test("rowTargets counts a row's mask over the targets it predicts, capped at maxLen", () => {
  assert.deepEqual(rowTargets([1, 2, 3, 4], [0, 1, 2, 3], 8), { weight: 6, tokens: 3 });
  assert.deepEqual(
    rowTargets([1, 2, 3, 4], [0, 1, 2, 3], 2),
    { weight: 3, tokens: 2 },
    "targets past maxLen are cut, as makeBatch cuts them",
  );
  assert.deepEqual(rowTargets([1, 2, 3], [1, 0, 2], 8), { weight: 2, tokens: 1 }, "a target masked 0 is not trained");
});

test("wholeRowBatches: sequences read whole, batched by like length up to maxRows", () => {
  assert.deepEqual(wholeRowBatches([600, 20, 20, 20, 20, 20, 20, 20]), [[0], [1, 2, 3, 4, 5, 6, 7]]);
  assert.deepEqual(wholeRowBatches([1, 1, 1], 2), [[0], [1, 2]], "a one-token sequence is read too");
});

test("chunkedLossAndBackward: ranks' chunks sum to one padded batch's loss and gradients", () => {
  const rng = new Rng(7),
    model = initModel(tinyLlamaConfig(40, 32), 1),
    params = [...trainableParams(model).values()];
  const ex = Array.from({ length: 9 }, () => {
    const n = 3 + Math.floor(rng.next() * 20),
      ids = Array.from({ length: n }, () => 1 + Math.floor(rng.next() * 39));
    return { ids, mask: ids.map((_, i) => (i < 2 ? 0 : 1 + (i % 3))) };
  });
  const grads = () => params.map((p) => Float32Array.from(p.grad));
  const zero = () => params.forEach((p) => p.grad.fill(0));
  zero();
  const whole = lossAndBackward(
    model,
    makeBatch(
      ex.map((e) => e.ids),
      ex.map((e) => e.mask),
      16,
    ),
    0.5,
  );
  const ref = grads();
  zero();
  let loss = 0;
  for (let rank = 0; rank < 2; rank++) loss += chunkedLossAndBackward(model, ex, 16, 0, 0.5, { rank, size: 2 }).loss;
  assert.ok(Math.abs(loss - whole * 0.5) < 1e-5, `${loss} against ${whole * 0.5}`);
  const got = grads();
  ref.forEach((g, i) => g.forEach((x, k) => assert.ok(Math.abs(x - got[i]![k]!) < 1e-6, `param ${i}[${k}]`)));
  zero();
  E.endStep();
});
