// The forecast's simulated safety batches against a real tokenizer: a 1,024-token BPE fitted as the
// policy's is (policyCorpus), then the same training draws tokenized for real — padded batch length,
// longest prompt and mean completion. No timing here (calibration is measured, not tested).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../../common/rng.js";
import { drawItem } from "../../safety/corpus.js";
import { policyText } from "../../safety/reward.js";
import { policyCorpus, targetCompletion } from "../../safety/source.js";
import { trainBpe } from "../../tokenizer/bpe-train.js";
import { promptIds, sftExample } from "../../tokenizer/chat.js";
import { safetyDrawTokens } from "./safety-mix.js";
import { existsSync } from "node:fs";
import { defaultDataFile } from "../../safety/rows.js";

const haveData = existsSync(defaultDataFile());

test(
  "safetyDrawTokens: the simulated safety batches are within 15% of a real 1,024-token BPE's",
  { skip: !haveData && "safety data absent" },
  () => {
    const tok = trainBpe(policyCorpus(new Rng(1), 20_000), 1024, { singleDigits: true }),
      rng = new Rng(7);
    const draws = Array.from({ length: 3200 }, () => {
      const x = drawItem(rng, "train"),
        p = policyText(x.text, 140),
        prompt = promptIds(tok, p).length;
      return { prompt, total: sftExample(tok, p, targetCompletion(x)).ids.length };
    });
    const longestOf = (n: number, f: (d: (typeof draws)[number]) => number) => {
      let sum = 0;
      for (let b = 0; b < 100; b++) sum += Math.max(...draws.slice(b * n, (b + 1) * n).map(f));
      return sum / 100;
    };
    const real = {
      longest16: longestOf(16, (d) => d.total),
      longest4: longestOf(4, (d) => d.total),
      longestPrompt: longestOf(32, (d) => d.prompt),
      completion: draws.reduce((a, d) => a + d.total - d.prompt, 0) / draws.length,
      mean: draws.reduce((a, d) => a + d.total, 0) / draws.length,
    };
    const s16 = safetyDrawTokens(16, 140, 1024),
      s4 = safetyDrawTokens(4, 140, 1024),
      s32 = safetyDrawTokens(32, 140, 1024);
    const sim = {
      longest16: s16.longest,
      longest4: s4.longest,
      longestPrompt: s32.longestPrompt,
      completion: s16.completion,
      mean: s16.mean,
    };
    for (const k of Object.keys(real) as (keyof typeof real)[]) {
      const ratio = sim[k] / real[k];
      assert.ok(
        ratio > 0.85 && ratio < 1.15,
        `${k}: simulated ${sim[k].toFixed(1)} tokens, real ${real[k].toFixed(1)} (ratio ${ratio.toFixed(2)})`,
      );
    }
    assert.ok(s4.longest < s16.longest && s16.longest < s32.longest, "the longest of more draws is longer");
  },
);
