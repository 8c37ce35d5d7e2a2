// "TENSOR OK": logits, loss and every parameter gradient of tiny HF-format models (fp32, bf16 Qwen2 with
// biases and tied head, fp16) against values saved from PyTorch by python/golden.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixtures } from "../common/testing.js";
import * as E from "../engine/index.js";
import { loadCheckpoint } from "./checkpoint.js";
import { forward } from "./transformer.js";

interface Golden {
  B: number;
  T: number;
  ids: number[];
  targets: number[];
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

for (const name of ["tiny-llama-f32", "tiny-qwen2-bf16", "tiny-llama-f16"]) {
  test(`${name}: logits, loss and all gradients match PyTorch`, () => {
    const dir = join(fixtures, name);
    const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as Golden;
    const { model } = loadCheckpoint(dir);
    const logits = forward(model, Int32Array.from(g.ids), g.B, g.T);
    assert.ok(maxDiff(logits.data, g.logits) < 2e-5, `logits maxdiff ${maxDiff(logits.data, g.logits)}`);
    const loss = E.crossEntropy(logits, Int32Array.from(g.targets));
    assert.ok(Math.abs(loss.item() - g.loss) < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
    E.backward(loss);
    assert.deepEqual([...model.params.keys()].sort(), Object.keys(g.grads).sort());
    for (const [pname, p] of model.params) {
      const d = maxDiff(p.grad, g.grads[pname]!);
      assert.ok(d < 2e-5, `${pname} grad maxdiff ${d}`);
      p.zeroGrad();
    }
    E.endStep();
  });
}
