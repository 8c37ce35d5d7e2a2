// The safety policy (MLCommons codes, refusals) and the shipped JSON files' schema checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { readShippedJson } from "../common/shipped.js";
import { tempDir } from "../common/testing.js";
import { benignCompletion, hazards, isRefusal, policy, refusalCompletion } from "./policy.js";

test("policy: MLCommons codes, a refusal per hazard that isRefusal recognises, no political category", () => {
  const p = policy();
  assert.ok(hazards().includes("S1") && hazards().includes("S11") && hazards().length >= 10);
  for (const c of Object.values(p.categories))
    assert.doesNotMatch(`${c.name} ${c.definition}`, /politic|election|government|censor/i);
  for (const h of hazards()) {
    const answer = /<answer>(.*)<\/answer>/.exec(refusalCompletion(h))![1]!;
    assert.ok(isRefusal(answer), h);
    assert.match(answer, new RegExp(p.categories[h]!.name));
  }
  assert.ok(!isRefusal(/<answer>(.*)<\/answer>/.exec(benignCompletion())![1]!));
  assert.ok(!isRefusal("Sure: I can help with that"));
});

test("shipped JSON (policy.json, probe.json) that does not match its schema is an internal error naming the file", () => {
  const f = join(tempDir(), "bad.json");
  writeFileSync(f, JSON.stringify({ categories: {} }));
  assert.throws(
    () => readShippedJson(pathToFileURL(f), z.object({ harmful: z.array(z.string()) }).strict()),
    (e: FrugalError) => e.code === "INTERNAL" && /^internal: .*bad\.json does not match its schema/.test(e.message),
  );
});
