// The import-boundary check: each folder of src/ is a layer, and a file imports only from its own folder and
// from layers before it — common → engine → tokenizer → model → tasks → train → rl → safety → cost →
// pipeline | serve → bench → cli → e2e (end-to-end tests). Reads the TypeScript sources; fails on any other.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { repoRoot } from "./common/files.js";

/** Layers in order; folders in one inner list share a rank and may not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ["common"],
  ["engine"],
  ["tokenizer"],
  ["model"],
  ["tasks"],
  ["train"],
  ["rl"],
  ["safety"],
  ["cost"],
  ["pipeline", "serve"],
  ["bench"],
  ["cli"],
  ["e2e"],
];
const rank = new Map(LAYERS.flatMap((fs, i) => fs.map((f) => [f, i] as const)));
const src = join(repoRoot, "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every relative import of a file (static, re-export and dynamic), as src-relative paths. */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)["'](\.{1,2}\/[^"']+)["']/gm)].map(
    (m) => m[1]!,
  );
  return specs.map((s) => relative(src, resolve(dirname(file), s)));
}

/** The violations of the layer order among these files (src-relative path → its imports). */
export function violations(files: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [file, imports] of files) {
    const from = file.split(sep)[0]!;
    if (!file.includes(sep)) continue; // repository-wide checks at src/ root (this file)
    const r = rank.get(from);
    if (r === undefined) {
      out.push(`${file}: folder "${from}" is in no layer; add it to LAYERS in src/layers.test.ts`);
      continue;
    }
    for (const imp of imports) {
      const to = imp.split(sep)[0]!,
        rt = rank.get(to);
      if (to === from) continue;
      if (rt === undefined || rt >= r) out.push(`${file} imports ${imp}: ${from} may import only layers before it`);
    }
  }
  return out;
}

test("layers: every import in src/ goes to its own folder or a layer before it", () => {
  const files = new Map(sources(src).map((f) => [relative(src, f), importsOf(f, readFileSync(f, "utf8"))]));
  assert.ok(files.size > 50, `read ${files.size} source files`);
  assert.deepEqual(violations(files), []);
});

test("layers: the check catches an upward import, a same-rank import and an unknown folder", () => {
  const files = new Map([
    [join("cost", "forecast.ts"), [join("pipeline", "recipe.js"), join("model", "config.js")]],
    [join("serve", "app.ts"), [join("pipeline", "runner.js")]],
    [join("misc", "x.ts"), []],
    [join("model", "load.ts"), [join("tokenizer", "tokenizer.js"), join("model", "checkpoint.js")]],
  ]);
  const v = violations(files);
  assert.equal(v.length, 3, v.join("\n"));
  assert.match(v[0]!, /cost\/forecast\.ts imports pipeline\/recipe\.js/);
  assert.match(v[1]!, /serve\/app\.ts imports pipeline\/runner\.js/);
  assert.match(v[2]!, /folder "misc" is in no layer/);
  assert.deepEqual(importsOf(join(src, "cli", "a.ts"), 'import x from "../b/c.js";\nawait import("./d.js");'), [
    join("b", "c.js"),
    join("cli", "d.js"),
  ]);
});
