// Progress when output is not a terminal: plain lines at the set interval (step, rate, ETA, the caller's
// metric), the last step always written, nothing when quiet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatSeconds, progress } from "./progress.js";

function fakeStream(): NodeJS.WriteStream & { text: string } {
  const s = { isTTY: false, text: "", write: (t: string) => ((s.text += t), true) };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

test("plain progress: a line on the first step and the last, none between within the interval", () => {
  const out = fakeStream(),
    p = progress("base", { stream: out, intervalS: 3600 });
  for (let step = 1; step <= 50; step++) p.update(step, 50, `loss ${(1 / step).toFixed(3)}`);
  p.stop();
  const lines = out.text.trim().split("\n");
  assert.equal(lines.length, 2, out.text);
  assert.match(lines[0]!, /^base step 1\/50 \(2%\) \| ETA \? \| loss 1\.000$/);
  assert.match(lines[1]!, /^base step 50\/50 \(100%\) \| [\d.]+ (steps\/s|s\/step) \| ETA 0s \| loss 0\.020$/);
});

test("plain progress: with a zero interval every step is a line; stop writes a step not yet shown", () => {
  const every = fakeStream(),
    p = progress("grpo", { stream: every, intervalS: 0 });
  for (let step = 1; step <= 4; step++) p.update(step, 10, "");
  assert.equal(every.text.trim().split("\n").length, 4);
  const held = fakeStream(),
    q = progress("sft", { stream: held, intervalS: 3600, unit: "prompt" });
  q.update(1, 10, "");
  q.update(2, 10, "");
  q.stop();
  assert.match(held.text, /sft prompt 2\/10 \(20%\)/, "the last update is written at stop");
});

test("quiet progress writes nothing; seconds format as h/m/s", () => {
  const out = fakeStream(),
    p = progress("x", { stream: out, quiet: true });
  p.update(1, 2, "a");
  p.stop();
  assert.equal(out.text, "");
  assert.deepEqual(
    [formatSeconds(42), formatSeconds(185), formatSeconds(3725), formatSeconds(NaN)],
    ["42s", "3m05s", "1h02m", "?"],
  );
});

test("plain progress: a new part (a stage's next member) is named and restarts the rate and ETA", () => {
  const out = fakeStream(),
    p = progress("safety-sft", { stream: out, intervalS: 0 });
  for (let step = 1; step <= 3; step++) p.update(step, 3, "", "safety-sft/member-0");
  p.update(1, 3, "", "safety-sft/member-1");
  p.stop();
  const lines = out.text.trim().split("\n");
  assert.match(lines[2]!, /^safety-sft\/member-0 step 3\/3 \(100%\)/);
  assert.match(lines[3]!, /^safety-sft\/member-1 step 1\/3 \(33%\) \| ETA \?$/);
});
