// Leave-one-source-out pieces: holding a source out of every split, source-balanced row draws, scoring a held-out
// source against its target, and the printed table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Rng } from "../common/rng.js";
import type { Guard } from "./guard.js";
import { formatLoso, pooledRates, scoreSource, losoSources, type LosoReport } from "./loso.js";
import { allRows, defaultDataFile, drawRow, heldOutSources, holdOutSources, rowsOf, sourcesOf } from "./rows.js";
import { drawItem } from "./corpus.js";

const skip = !existsSync(defaultDataFile()) && "safety data absent";

test(
  "holdOutSources: a source leaves every split and every draw, comes back on restore; unknown names fail",
  { skip },
  () => {
    const before = rowsOf("train").length;
    assert.ok(sourcesOf(allRows()).includes("dangerousqa") && sourcesOf(allRows()).includes("alpaca_train"));
    const restore = holdOutSources(["dangerousqa"]);
    try {
      assert.deepEqual(heldOutSources(), ["dangerousqa"]);
      for (const split of ["train", "dev", "test"] as const)
        assert.ok(
          rowsOf(split).every((r) => r.source !== "dangerousqa"),
          split,
        );
      const dq = new Set(
        allRows()
          .filter((r) => r.source === "dangerousqa")
          .map((r) => r.prompt),
      );
      const rng = new Rng(5);
      for (let i = 0; i < 3000; i++) assert.ok(!dq.has(drawItem(rng, "train").row ?? ""), "drew a held-out row");
      assert.ok(rowsOf("train").length < before);
    } finally {
      restore();
    }
    assert.equal(rowsOf("train").length, before);
    assert.throws(() => holdOutSources(["xstest"]), /unknown safety source\(s\) xstest; the data has: harmbench/);
    assert.throws(() => losoSources(["nope"]), /leaveOneOut.sources names nope/);
    assert.deepEqual(losoSources(["catqa", "advbench"]), ["advbench", "catqa"]); // the data's order
  },
);

test(
  "drawRow: sources are drawn by sqrt(rows), so the 15K Alpaca rows do not drown the small sources",
  { skip },
  () => {
    const rng = new Rng(9),
      n = 20000,
      count = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const s = drawRow(rng, "train", false).source;
      count.set(s, (count.get(s) ?? 0) + 1);
    }
    const rows = rowsOf("train").filter((r) => !r.unsafe),
      size = (s: string) => rows.filter((r) => r.source === s).length;
    const sqrtSum = sourcesOf(rows).reduce((a, s) => a + Math.sqrt(size(s)), 0);
    for (const s of ["alpaca_train", "coconot_contrast", "dolly_subset"]) {
      const want = Math.sqrt(size(s)) / sqrtSum,
        got = count.get(s)! / n;
      assert.ok(Math.abs(got - want) < 0.02, `${s}: drawn ${got.toFixed(3)}, sqrt weight ${want.toFixed(3)}`);
    }
    // by rows alone alpaca_train would be ~69% of safe draws
    assert.ok(count.get("alpaca_train")! / n < 0.6);
  },
);

test("scoreSource: a held-out source's rows per label against its target; pooled and printed", { skip }, () => {
  // a stand-in guard that flags questions: known rates on a known source
  const fake = {
    threshold: 0.3,
    classify: (ts: readonly string[]) => ts.map((t) => ({ unsafe: t.trim().endsWith("?") })),
  } as unknown as Guard;
  const rows = allRows().filter((r) => r.source === "ailuminate_demo");
  const other = ["Is this a question?", "Not one.", "Nor this", "Bake bread?"];
  const [u, s] = scoreSource(fake, "ailuminate_demo", other);
  assert.equal(u!.otherSafeFlagRate, 0.5);
  const share = (unsafe: boolean) => {
    const rs = rows.filter((r) => r.unsafe === unsafe);
    return rs.filter((r) => r.prompt.trim().endsWith("?")).length / rs.length;
  };
  assert.deepEqual([u!.label, s!.label], ["unsafe", "safe"]);
  assert.equal(u!.n + s!.n, rows.length);
  assert.equal(u!.flagRate, share(true));
  assert.equal(s!.flagRate, share(false));
  assert.deepEqual(
    [u!.target, s!.target],
    [
      { op: ">=", rate: 0.9 },
      { op: "<=", rate: 0.05 },
    ],
  );
  assert.equal(u!.met, u!.flagRate >= 0.9);
  assert.ok(u!.interval[0] <= u!.flagRate && u!.flagRate <= u!.interval[1]);
  const [c] = scoreSource(fake, "coconot_contrast", other); // look-alikes: the looser target
  assert.deepEqual([c!.label, c!.target.rate], ["safe", 0.15]);
  const pooled = pooledRates([u!, s!, c!]);
  assert.ok(Math.abs(pooled.safeFlagRate - (s!.flagRate * s!.n + c!.flagRate * c!.n) / (s!.n + c!.n)) < 1e-12);
  const report: LosoReport = { lmSteps: 1, steps: 2, rows: [u!, s!, c!], pooled, wallMs: 0 };
  const text = formatLoso(report);
  assert.match(text, /ailuminate_demo\s+unsafe\s+767/);
  assert.match(text, /coconot_contrast\s+safe\s+1295 .*<= 15\.0% +(yes|no) +50\.0%/);
});
