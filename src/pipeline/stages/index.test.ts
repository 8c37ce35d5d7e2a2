// The stage registry: one kind per stage type of the recipe schema, each reading the inputs the recipe checks
// (a safety-grpo stage names its guard too), and the guard the only kind the task eval skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../common/testing.js";
import { parseRecipe } from "../recipe.js";
import { kindOf, StageSchema, type StageConfig } from "./index.js";

const miniR1 = () => JSON.parse(readFileSync(join(repoRoot, "recipes/mini-r1.json"), "utf8"));

test("registry: every stage type of the schema has its kind, and each kind's type is its own", () => {
  const types = StageSchema.options.map((o) => o.shape.type.value).sort();
  assert.equal(types.length, 8);
  for (const type of types) assert.equal(kindOf({ type } as StageConfig).type, type);
  const evaluated = types.filter((type) => kindOf({ type } as StageConfig).evaluated);
  assert.deepEqual(
    types.filter((t) => !evaluated.includes(t)),
    ["guard"],
  );
  assert.throws(() => kindOf({ type: "ppo" } as unknown as StageConfig), /internal: no stage kind "ppo"/);
});

test("registry: inputs name the stages a kind reads; the recipe rejects a guard that is not an earlier stage", () => {
  const r = parseRecipe(miniR1(), "mini-r1.json");
  const inputs = Object.fromEntries(r.stages.map((s) => [s.name, kindOf(s).inputs(s)]));
  assert.deepEqual(inputs.base, []);
  assert.deepEqual(inputs["r1-safe"], ["safety-sft", "guard"]);
  const raw = miniR1(),
    g = raw.stages.findIndex((s: { type: string }) => s.type === "guard");
  raw.stages.push(raw.stages.splice(g, 1)[0]); // the guard last: safety-grpo now reads a later stage
  assert.throws(
    () => parseRecipe(raw, "moved.json"),
    /stage "r1-safe" reads from "guard", which is not an earlier stage/,
  );
});
