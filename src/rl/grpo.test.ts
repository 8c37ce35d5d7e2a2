// GRPO's loss mask: the prompt and the tokens a tool wrote into a completion are not trained.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lossMask } from "./grpo.js";

test("loss mask: prompt 0, completion 1, a tool's forced tokens 0", () => {
  assert.deepEqual(lossMask(2, 3), [0, 0, 1, 1, 1]);
  assert.deepEqual(lossMask(2, 5, [1, 2]), [0, 0, 1, 0, 0, 1, 1]);
  assert.deepEqual(lossMask(0, 2, []), [1, 1]);
});
