// The /webgpu page in headless Chromium (WebGPU on SwiftShader, its CPU Vulkan device): the tiny recipe's
// pretraining stage trains in the tab on the webgpu kernels, draws its loss curve, and each step's loss equals
// the same stage's on the CPU kernels in Node within 1e-3. Skips without Debian's chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import { chromium } from "playwright-core";
import { repoRoot, tempDir } from "../common/testing.js";
import * as E from "../engine/index.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";
import { mountDashboard } from "../serve/dashboard.js";
import { listenLocal } from "../serve/listen.js";

const CHROMIUM = process.env.FRUGAL_CHROMIUM ?? "/usr/bin/chromium";
const STEPS = 3;

interface PageState {
  kernels: { name: string; description: string } | null;
  losses: number[];
  done: boolean;
  error: string | null;
}

/** The same stage in Node on the CPU kernels: the recipe as the page gets it, with STEPS steps. */
function cpuLosses(): number[] {
  const r = readRecipe(join(repoRoot, "recipes/tiny.json")),
    out = join(tempDir(), "cpu");
  (r.stages[0] as { steps: number }).steps = STEPS;
  E.useKernels(E.nativeKernels() ?? E.referenceSet);
  runRecipe({ ...r, stages: [r.stages[0]!] }, { outDir: out, resume: false, quiet: true, noForecast: true });
  return readFileSync(join(stageDir(out, "base"), "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

test(
  "browser: /webgpu trains the tiny recipe's pretraining on WebGPU in the tab, with the CPU run's losses",
  { skip: !existsSync(CHROMIUM) && `no chromium at ${CHROMIUM} (apt-get install chromium)` },
  async () => {
    const want = cpuLosses();
    const app = new Hono();
    mountDashboard(app, tempDir());
    const { server, origin } = await listenLocal(app);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--enable-unsafe-webgpu",
        "--use-angle=swiftshader",
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${origin}/webgpu?steps=${STEPS}`);
      await page.waitForFunction(() => (window as unknown as { frugal?: PageState }).frugal?.done, null, {
        timeout: 240_000,
      });
      const s = await page.evaluate(() => (window as unknown as { frugal: PageState }).frugal);
      assert.equal(s.error, null);
      assert.deepEqual(errors, []);
      assert.equal(s.kernels?.name, "webgpu", `the page ran on ${s.kernels?.description}`);
      assert.equal(s.losses.length, STEPS);
      s.losses.forEach((l, i) =>
        assert.ok(Math.abs(l - want[i]!) <= 1e-3 * want[i]!, `step ${i}: ${l} in the browser vs ${want[i]} on the CPU`),
      );
      assert.equal(await page.locator("#chart .uplot canvas").count(), 1, "the loss curve is drawn");
      assert.match(await page.locator("#status").innerText(), new RegExp(`step ${STEPS} of ${STEPS}.*done`));
    } finally {
      await browser.close();
      server.close();
    }
  },
);
