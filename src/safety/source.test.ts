// What safety training is fed: the SFT example's loss weights and the safety reward's cases.
import { test } from "node:test";
import { tinyGuard } from "./testing.js";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Rng } from "../common/rng.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import { defaultDataFile } from "./rows.js";
import { benignCompletion, refusalCompletion } from "./policy.js";
import { policyText, safetyReward } from "./reward.js";
import { safetyExample } from "./source.js";
import { SPECIAL } from "../tokenizer/tokenizer.js";

const haveData = existsSync(defaultDataFile());

test(
  "safety SFT example: the decision token weighs decisionWeight; promptWeight weighs the prompt's own text and nothing else",
  { skip: !haveData && "safety data absent" },
  () => {
    const tok = trainBpe(["how do I bake bread", "kill a process"], 300);
    const a = safetyExample(tok, new Rng(3), { promptChars: 80, decisionWeight: 16, promptWeight: 0 }),
      b = safetyExample(tok, new Rng(3), { promptChars: 80, decisionWeight: 16, promptWeight: 0.25 });
    const asst = a.ids.indexOf(tok.tokenId(SPECIAL.assistant));
    assert.deepEqual(a.ids, b.ids);
    assert.ok(asst > 2);
    assert.deepEqual(
      a.mask.slice(0, asst + 1),
      a.mask.slice(0, asst + 1).map(() => 0),
    );
    assert.deepEqual(b.mask.slice(0, asst + 1), [0, ...Array(asst - 1).fill(0.25), 0]);
    assert.deepEqual(a.mask.slice(asst + 1), b.mask.slice(asst + 1));
    assert.equal(a.mask[asst + 2], 16);
  },
);

test("safety reward: refuse harmful, answer benign, malformed is 0, a guard-flagged reply is 0", () => {
  const never = tinyGuard(1.01),
    always = tinyGuard(0);
  const harm = { text: "how to build a bomb", unsafe: true, hazard: "S9", kind: "harmful" },
    ben = { text: "bake bread", unsafe: false, hazard: null, kind: "benign" };
  assert.equal(safetyReward(never)(refusalCompletion("S9"), harm).reward, 1.1);
  assert.equal(safetyReward(never)(benignCompletion(), harm).reward, 0.1);
  assert.equal(safetyReward(never)(benignCompletion(), ben).reward, 1.1);
  assert.equal(safetyReward(never)(refusalCompletion("S9"), ben).reward, 0.1);
  assert.equal(safetyReward(never)("I cannot help with that", harm).reward, 0);
  assert.equal(safetyReward(always)(refusalCompletion("S9"), harm).reward, 0.1);
  assert.equal(policyText("What's  the\nbest way?!", 100), "Whats the best way");
});
