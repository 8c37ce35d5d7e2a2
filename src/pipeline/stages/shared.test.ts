// Verified traces as SFT examples: the tokens a trace marks as forced (a tool's writes, the referee's redrawn
// picks) carry no loss, the model's own picks and the end token do, and a trace without marks trains it all;
// a trace that kept its sampled ids trains those, not its text encoded again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../../common/rng.js";
import { TASK_CHARS } from "../../tasks/index.js";
import { CharTokenizer } from "../../tokenizer/tokenizer.js";
import { promptIds } from "../../tokenizer/chat.js";
import { decodePrefix, stepCost, type Calibration } from "../../cost/forecast.js";
import { tinyLlamaConfig } from "../../model/testing.js";
import type { ForecastContext } from "./kind.js";
import { grpoForecast, sampledTraceLengths, stageTraceLengths, traceOf } from "./shared.js";

const tok = CharTokenizer.fromChars(TASK_CHARS),
  t = { tokenizer: tok };

test("traceOf: forced completion tokens are out of the loss; free picks and the end token stay in", () => {
  const completion = "<think>3+4=7 (7 to 7) yes</think><answer>3+4</answer>";
  const n = tok.encode(completion).length,
    from = tok.encode("<think>3+4=").length,
    written = Array.from({ length: tok.encode("7 (7 to 7)").length }, (_, i) => from + i); // the calculator's
  const ex = traceOf([{ prompt: "3 4 to 7", completion, forced: [...written, 10_000] }], new Rng(1), t);
  const start = promptIds(tok, "3 4 to 7").length;
  assert.equal(ex.mask.indexOf(1), start);
  assert.equal(tok.decode(written.map((i) => ex.ids[start + i]!)), "7 (7 to 7)");
  for (const i of written) assert.equal(ex.mask[start + i], 0, `token ${i} was written by the tool`);
  assert.equal(ex.mask.slice(start).filter((m) => m === 1).length, n + 1 - written.length); // 10,000: past the end
  assert.equal(ex.mask[ex.mask.length - 1], 1); // the end token
  const plain = traceOf([{ prompt: "3 4 to 7", completion }], new Rng(1), t);
  assert.deepEqual(plain.ids, ex.ids);
  assert.equal(plain.mask.filter((m) => m === 1).length, n + 1);
});

test("traceOf: a trace that kept its sampled ids trains exactly those, forced ones masked where they were sampled", () => {
  // sampled after a template that opened the reasoning: a leading space the text path would trim, shifting the
  // forced indices by one onto the model's own picks
  const completion = "<think>3+4=7 (7 to 7) yes</think><answer>3+4</answer>",
    tokens = tok.encode(" " + completion),
    from = tok.encode(" <think>3+4=").length,
    forced = Array.from({ length: tok.encode("7 (7 to 7)").length }, (_, i) => from + i);
  const ex = traceOf([{ prompt: "3 4 to 7", completion, forced, tokens }], new Rng(1), t);
  const p = promptIds(tok, "3 4 to 7");
  assert.deepEqual(ex.ids, [...p, ...tokens, tok.tokenId("<|end|>")]);
  const masked = ex.ids.filter((_, i) => i >= p.length && ex.mask[i] === 0);
  assert.equal(tok.decode(masked), "7 (7 to 7)");
  assert.equal(ex.mask.filter((m) => m === 1).length, tokens.length + 1 - forced.length);
  const outside = [...tokens.slice(0, -1), tok.vocabSize];
  assert.throws(
    () => traceOf([{ prompt: "3 4 to 7", completion, forced, tokens: outside }], new Rng(1), t),
    /internal: a trace's sampled ids reach past the trainee's \d+-token vocabulary/,
  );
});

test("grpoForecast: each draw's rows decode as many steps as the longest, every token at its row's cost", () => {
  const asked: unknown[] = [];
  const calibration = {
    of: () => ({ stepS: 2 }),
    decodeStep: (_c: unknown, o: unknown) => (asked.push(o), { stepS: 0.01, rowS: 0.001 }),
  } as unknown as Calibration;
  const config = tinyLlamaConfig(32, 128),
    s = { name: "grpo", steps: 10, promptsPerStep: 4, groupSize: 5, ppoEpochs: 1, maxNewTokens: 40, kvCacheBf16: true };
  const lengths = { updateT: 60 },
    L = { completion: 50, decodeAt: 70 };
  const at = (ranks: number, more = {}) =>
    grpoForecast({ ...s, ...more }, config, L, lengths, 100, { calibration, ranks } as unknown as ForecastContext);
  const one = at(1),
    two = at(2),
    three = at(1, { refillRounds: 2 });
  // 20 completions × 50 tokens at 1 ms, and one batch per rank of 40 steps (maxNewTokens < T) at 10 ms
  const sampleS = 20 * 50 * 0.001 + 40 * 0.01,
    updateS = 2 * (2 / 3 + 1);
  assert.ok(Math.abs(one.seconds - 10 * (sampleS + updateS)) < 1e-9, `${one.seconds}`);
  // two ranks: each rank's batch runs its 40 steps (the ranks' forecast then divides the whole by 2)
  assert.ok(Math.abs(two.seconds - one.seconds - 10 * 40 * 0.01) < 1e-9, `${two.seconds}`);
  assert.ok(Math.abs(three.seconds - 10 * (3 * sampleS + updateS)) < 1e-9, `${three.seconds}`);
  assert.ok(three.flops > one.flops);
  // decoding is timed where these completions decode, with the stage's KV cache
  assert.deepEqual(asked[0], { members: undefined, at: 70, kvBf16: true });
});

test("stepCost: a decoding step's fixed part and part per row, from two batch sizes", () => {
  const c = stepCost(0.002 + 32 * 0.0001, 0.002 + 4 * 0.0001);
  assert.ok(Math.abs(c.stepS - 0.002) < 1e-12 && Math.abs(c.rowS - 0.0001) < 1e-12, JSON.stringify(c));
  // noise that makes 4 rows slower than 32: all of it is the fixed part
  assert.deepEqual(stepCost(0.003, 0.004), { stepS: 0.003, rowS: 0 });
});

test("decodeAt: a completion token's mean position, past the middle of a mean completion when lengths vary", () => {
  const ref = stageTraceLengths("addition", undefined),
    sampled = sampledTraceLengths("countdown", [4]);
  for (const L of [ref, sampled]) {
    assert.ok(L.decodeAt >= L.prompt + L.completion / 2 - 1e-9, `${L.decodeAt} ${L.prompt} ${L.completion}`);
    assert.ok(L.decodeAt <= L.prompt + L.maxCompletion / 2 + 1e-9, `${L.decodeAt} ${L.maxCompletion}`);
  }
  // countdown's searches vary from a few lines to the limit: the long ones carry most tokens
  assert.ok(sampled.decodeAt > sampled.prompt + 0.6 * sampled.completion, `${sampled.decodeAt}`);
});

test("decodePrefix: timed decoding centres on the asked position, inside the context", () => {
  const config = tinyLlamaConfig(32, 1024);
  assert.equal(decodePrefix(config, 0), 12);
  assert.equal(decodePrefix(config, 300), 272);
  assert.equal(decodePrefix(config, 5000), 1024 - 49);
  assert.equal(decodePrefix(tinyLlamaConfig(32, 32), 300), 1);
});

test("sampled lengths: a search task's searches in full, longer than its references; else the references", () => {
  const ref = stageTraceLengths("countdown", [4]),
    sampled = sampledTraceLengths("countdown", [4]);
  assert.ok(sampled.completion > ref.completion * 1.2, `${sampled.completion} against ${ref.completion}`);
  assert.equal(sampled.prompt, ref.prompt);
  assert.deepEqual(sampledTraceLengths("addition", undefined), stageTraceLengths("addition", undefined));
});
