// What MPI ranks must agree on: differences are named with the rank, host and fix; the code hash is stable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { codeVersion, rankDifferences, rankFacts, type RankFacts } from "./ranks.js";

test("rankDifferences: none for equal facts; each differing field named with its rank, host and fix", () => {
  const a: RankFacts = { host: "n1", recipe: "r1", code: "c1", node: "v20", kernels: "native", threads: 2 };
  assert.deepEqual(rankDifferences([a, { ...a, host: "n2", threads: 8 }]), [], "hosts and threads may differ");
  const diff = rankDifferences([a, { ...a, host: "n2" }, { ...a, host: "n3", recipe: "r2", code: "c2" }]);
  assert.equal(diff.length, 2);
  assert.match(diff[0]!, /^rank 2 \(n3\) has recipe r2, rank 0 \(n1\) has r1: give every rank the same recipe/);
  assert.match(diff[1]!, /^rank 2 \(n3\) has code c2, .*same frugal build/);
});

test("rankFacts: the recipe hash follows the recipe text; the code version is a stable 16-hex hash", () => {
  const v = codeVersion();
  assert.match(v, /^[0-9a-f]{16}$/);
  assert.equal(codeVersion(), v);
  assert.notEqual(rankFacts('{"a":1}').recipe, rankFacts('{"a":2}').recipe);
  assert.equal(rankFacts('{"a":1}').recipe, rankFacts('{"a":1}').recipe);
});
