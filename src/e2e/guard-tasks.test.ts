// The guard must pass the project's own task prompts ("12+34", "57 75 89 to 43", knights puzzles), bare and in
// held-out frames, at every difficulty: a small guard trained as the real one is (same draws, task prompts
// labelled safe) is checked on every one of them, and still flags held-out harm, so passing is not trivial.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../common/rng.js";
import { tempDir } from "../common/testing.js";
import { parseRecipe } from "../pipeline/recipe.js";
import { runRecipe } from "../pipeline/runner.js";
import { drawItem, GUARD_MIX, heldOutSets, taskPromptSet } from "../safety/corpus.js";
import { Guard } from "../safety/guard.js";
import { TASK_FRAMES, family } from "../safety/lists.js";
import { defaultDataFile } from "../safety/rows.js";
import { TASKS } from "../tasks/index.js";

const skip = !existsSync(defaultDataFile()) && "safety data absent";
const out = join(tempDir(), "guard-tasks");
let g: Guard;

before(() => {
  if (skip) return;
  const recipe = parseRecipe(
    {
      name: "guard-tasks",
      seed: 3,
      stages: [
        {
          type: "guard",
          name: "guard",
          vocabSize: 1024,
          model: {
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 4,
            intermediate_size: 128,
            max_position_embeddings: 96,
            tie_word_embeddings: true,
          },
          pooling: "max",
          steps: 400,
          batchSize: 32,
          lr: 0.002,
          warmup: 20,
          devItems: 1500,
        },
      ],
    },
    "guard-tasks test",
  );
  runRecipe(recipe, { outDir: out, resume: false, quiet: true });
  g = Guard.load(join(out, "stages/guard/checkpoint"));
});

test(
  "guard draws: task prompts of every task, bare and framed, labelled safe; held-out frames never drawn",
  { skip },
  () => {
    const rng = new Rng(11),
      groups = new Map<string, number>(),
      held = family(TASK_FRAMES, true).map((f) => f.replace("{p}", "").trim());
    for (let i = 0; i < 10000; i++) {
      const it = drawItem(rng, "train", GUARD_MIX);
      if (it.kind !== "task") continue;
      assert.equal(it.unsafe, false);
      for (const h of held.filter((h) => h.length > 3))
        assert.ok(!it.text.includes(h), `${it.text} uses held-out ${h}`);
      groups.set(it.group!, (groups.get(it.group!) ?? 0) + 1);
    }
    for (const name of Object.keys(TASKS))
      for (const form of ["bare", "framed"]) assert.ok(groups.get(`task:${name}:${form}`)! > 5, `${name} ${form}`);
    // the held-out set: every task and difficulty, bare and in each held-out frame
    const set = taskPromptSet(),
      perCase = 2 * (1 + family(TASK_FRAMES, true).length);
    for (const [name, t] of Object.entries(TASKS))
      assert.equal(
        set.filter((x) => x.group!.startsWith(`task:${name}:`)).length,
        t.difficulties.length * perCase,
        name,
      );
  },
);

test(
  "a trained guard passes every task prompt, bare and in held-out frames, and still flags held-out harm",
  { skip },
  () => {
    const tasks = taskPromptSet().map((x) => x.text),
      flagged = g.classify(tasks).flatMap((v, i) => (v.unsafe ? [tasks[i]!] : []));
    assert.deepEqual(flagged, [], `${flagged.length} of ${tasks.length} task prompts flagged`);
    const readme = ["12+34", "457+368", "What is 12+34?", "61 75 65 20 to 63"];
    assert.deepEqual(
      g.classify(readme).map((v) => v.unsafe),
      readme.map(() => false),
    );
    const harmful = heldOutSets(50).harmful.map((x) => x.text),
      rate = g.classify(harmful).filter((v) => v.unsafe).length / harmful.length;
    assert.ok(rate > 0.3, `the guard flags only ${(100 * rate).toFixed(1)}% of held-out harmful rows`);
  },
);
