// Sampler: greedy decoding equals argmax over a full forward pass at every position, seeds reproduce,
// top-k/top-p restrict the support, stops and limits finish sequences with the right reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixtures } from "../common/testing.js";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import { loadCheckpoint } from "./checkpoint.js";
import { KVCache, forward, forwardCached } from "./transformer.js";
import { decodeBatch, Decoder, generate, pickToken } from "./sampler.js";

const model = () => loadCheckpoint(join(fixtures, "tiny-llama-f32")).model;

test("greedy decoding equals argmax of a full forward pass at every position (batched, ragged prompts)", () => {
  const m = model(),
    V = m.config.vocab_size;
  const prompts = [[1, 5, 7], [3], [2, 2, 9, 4, 11, 6], [8, 1]];
  const out = generate(m, prompts, [1, 2, 3, 4], { maxNewTokens: 12, temperature: 0, batch: 3 });
  prompts.forEach((p, i) => {
    const seq = [...p, ...out[i]!.tokens];
    assert.equal(out[i]!.tokens.length, 12);
    assert.equal(out[i]!.finishReason, "length");
    const logits = E.noGrad(() => forward(m, Int32Array.from(seq), 1, seq.length)).data;
    for (let t = p.length - 1; t < seq.length - 1; t++) {
      let arg = 0;
      for (let v = 1; v < V; v++) if (logits[t * V + v]! > logits[t * V + arg]!) arg = v;
      assert.equal(seq[t + 1], arg, `prompt ${i}, position ${t}`);
    }
    E.endStep();
  });
});

test("fused decode blocks match the op-by-op path: logits, caches and sampled tokens (Llama and Qwen2 with biases)", () => {
  for (const name of ["tiny-llama-f32", "tiny-qwen2-bf16"]) {
    const m = loadCheckpoint(join(fixtures, name)).model,
      V = m.config.vocab_size;
    const caches = [new KVCache(m.config, 3, 16), new KVCache(m.config, 3, 16)];
    const prompt = Int32Array.of(1, 4, 2, 7, 3, 9);
    for (const c of caches) {
      E.noGrad(() => forwardCached(m, c, prompt, Int32Array.of(0, 0, 0), Int32Array.of(0, 1, 2), 2, false));
      E.endStep();
    }
    const ids = Int32Array.of(5, 6, 8),
      pos = Int32Array.of(2, 2, 2),
      slot = Int32Array.of(2, 0, 1);
    const fused = forwardCached(m, caches[0]!, ids, pos, slot, 1, true, true).toArray();
    const ops = forwardCached(m, caches[1]!, ids, pos, slot, 1, true, false).toArray();
    E.endStep();
    assert.equal(fused.length, 3 * V);
    fused.forEach((x, i) =>
      assert.ok(Math.abs(x - ops[i]!) < 1e-4 * (1 + Math.abs(ops[i]!)), `${name} logit ${i}: ${x} vs ${ops[i]}`),
    );
    for (let l = 0; l < m.config.num_hidden_layers; l++) {
      // on the webgpu kernels the caches live on the device: onHost brings them back
      const [k0, k1] = [E.onHost(caches[0]!.k[l]!), E.onHost(caches[1]!.k[l]!)];
      k0.forEach((x, i) => assert.ok(Math.abs(x - k1[i]!) < 1e-5, `${name} key cache layer ${l}`));
    }
    const a = generate(m, [[1, 2, 3], [4]], [5, 6], { maxNewTokens: 10, temperature: 1, fusedDecode: true });
    const b = generate(m, [[1, 2, 3], [4]], [5, 6], { maxNewTokens: 10, temperature: 1, fusedDecode: false });
    assert.deepEqual(
      a.map((s) => s.tokens),
      b.map((s) => s.tokens),
      name,
    );
  }
});

test("same seed → same tokens; different seeds differ; log-probs are finite and ≤ 0", () => {
  const m = model();
  const a = generate(
    m,
    [
      [1, 2],
      [1, 2],
    ],
    [7, 8],
    { maxNewTokens: 20, temperature: 1 },
  );
  const b = generate(m, [[1, 2]], [7], { maxNewTokens: 20, temperature: 1 });
  assert.deepEqual(a[0]!.tokens, b[0]!.tokens);
  assert.notDeepEqual(a[0]!.tokens, a[1]!.tokens);
  for (const lp of a[0]!.logprobs) assert.ok(Number.isFinite(lp) && lp <= 0);
});

test("top-k 1 is greedy; top-p keeps the smallest set reaching p", () => {
  const logits = Float32Array.of(0, 3, 1, 2.9, -5);
  const rng = new Rng(1);
  for (let i = 0; i < 50; i++) assert.equal(pickToken(logits, { temperature: 1, topK: 1, topP: 1 }, rng)[0], 1);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(pickToken(logits, { temperature: 1, topK: 0, topP: 0.6 }, rng)[0]);
  assert.deepEqual([...seen].sort(), [1, 3]);
});

test("top-k / top-p sample exactly as a full sort of the vocabulary would (the fast path sorts only likely tokens)", () => {
  const rng = new Rng(11);
  const reference = (logits: Float32Array, topK: number, topP: number, r: Rng): number => {
    const V = logits.length,
      mx = Math.max(...logits),
      z = logits.reduce((a, x) => a + Math.exp(x - mx), 0);
    const p = Array.from(logits, (x) => Math.exp(x - mx - Math.log(z)));
    let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    if (topK > 0) order = order.slice(0, topK);
    if (topP < 1) {
      let cum = 0,
        keep = 0;
      while (keep < order.length && (keep === 0 || cum < topP)) cum += p[order[keep++]!]!;
      order = order.slice(0, keep);
    }
    let u = r.next() * order.reduce((a, v) => a + p[v]!, 0);
    for (const v of order) {
      u -= p[v]!;
      if (u <= 0) return v;
    }
    return order[order.length - 1]!;
  };
  for (let trial = 0; trial < 300; trial++) {
    const V = [5, 83, 1024][trial % 3]!,
      sharp = [0.1, 1, 8][(trial >> 2) % 3]!;
    const logits = Float32Array.from({ length: V }, () => (rng.next() - 0.5) * 2 * sharp);
    if (trial % 5 === 0) logits[3] = logits[1]!; // ties break on the lower id
    const topK = [0, 1, 5, 40][trial % 4]!,
      topP = [1, 0.5, 0.9, 0.999][(trial >> 1) % 4]!;
    if (topK === 0 && topP === 1) continue;
    const seed = 1000 + trial;
    assert.equal(
      pickToken(logits, { temperature: 1, topK, topP }, new Rng(seed))[0],
      reference(logits, topK, topP, new Rng(seed)),
      `trial ${trial}: V ${V} topK ${topK} topP ${topP}`,
    );
  }
});

test("stop tokens and stop strings end with finishReason stop; bad options and overlong prompts are clear errors", () => {
  const m = model();
  const free = generate(m, [[1]], [3], { maxNewTokens: 30, temperature: 0 })[0]!;
  const stopTok = free.tokens[4]!;
  const s = generate(m, [[1]], [3], { maxNewTokens: 30, temperature: 0, stopTokens: [stopTok] })[0]!;
  assert.equal(s.finishReason, "stop");
  assert.deepEqual(s.tokens, free.tokens.slice(0, free.tokens.indexOf(stopTok)));
  const dec = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("");
  const target = dec(free.tokens.slice(2, 4));
  const s2 = generate(m, [[1]], [3], { maxNewTokens: 30, temperature: 0, stopStrings: [target], decode: dec })[0]!;
  assert.equal(s2.finishReason, "stop");
  assert.ok(!s2.text.includes(target));
  assert.throws(
    () => generate(m, [new Array(30).fill(1)], [1], { maxNewTokens: 10 }),
    /exceeds the context of|CONTEXT|past/,
  );
  assert.throws(() => generate(m, [[1]], [1], { temperature: -1 }), /temperature must be ≥ 0/);
  assert.throws(() => generate(m, [[1]], [1], { topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => generate(m, [[]], [1]), /prompt is empty/);
});

test("batched prefill (Decoder.addMany, ragged prompts right-padded) decodes exactly like prompts added one by one", () => {
  const m = model(),
    prompts = [[1, 5, 7], [3], [2, 2, 9, 4, 11, 6], [8, 1]];
  const opts = { maxNewTokens: 10, temperature: 0, topK: 0, topP: 1, stopTokens: [], stopStrings: [] };
  const run = (batched: boolean) => {
    const dec = new Decoder(m, 4, 32),
      slots = batched
        ? dec.addMany(prompts.map((p, i) => ({ prompt: p, opts, seed: i })))
        : prompts.map((p, i) => dec.add(p, opts, i));
    const out = new Map<number, number[]>();
    while (dec.active > 0) {
      dec.step();
      for (const [s, r] of dec.takeFinished()) out.set(s, r.tokens);
    }
    for (const [s, r] of dec.takeFinished()) out.set(s, r.tokens);
    return slots.map((s) => out.get(s)!);
  };
  const one = run(false),
    many = run(true);
  assert.equal(one.length, 4);
  assert.ok(one.every((t) => t.length === 10));
  assert.deepEqual(many, one);
});

test("onFinished counts finished completions up to every prompt, and does not change what is sampled", () => {
  const m = model(),
    rng = new Rng(4);
  const prompts = Array.from({ length: 9 }, (_, i) =>
    Array.from({ length: 2 + (i % 4) }, () => rng.int(3, m.config.vocab_size - 1)),
  );
  const seeds = prompts.map((_, i) => 100 + i),
    opts = { maxNewTokens: 6, temperature: 1, batch: 4 };
  const seen: number[] = [];
  const told = generate(m, prompts, seeds, { ...opts, onFinished: (n) => seen.push(n) });
  const plain = generate(m, prompts, seeds, opts);
  assert.deepEqual(
    told.map((s) => s.tokens),
    plain.map((s) => s.tokens),
  );
  assert.equal(seen[seen.length - 1], prompts.length);
  assert.ok(
    seen.every((n, i) => i === 0 || n > seen[i - 1]!),
    `strictly growing: ${seen.join(",")}`,
  );
});

test("bf16 KV cache: half the bytes, logits within bf16 rounding of the float32 cache's, prefill and decode", () => {
  const m = model(),
    V = m.config.vocab_size,
    ids = [5, 9, 3, 7, 1, 2];
  const run = (bf16: boolean) => {
    const cache = new KVCache(m.config, 1, 16, bf16),
      z = Int32Array.of(0);
    const out = [forwardCached(m, cache, Int32Array.from(ids.slice(0, 4)), z, z, 4, true).data.slice()];
    for (let t = 4; t < ids.length; t++)
      out.push(forwardCached(m, cache, Int32Array.of(ids[t]!), Int32Array.of(t), z, 1, true).data.slice());
    return { cache, out };
  };
  const f = run(false),
    h = run(true);
  assert.ok(h.cache.k[0] instanceof Uint16Array && h.cache.k[0].byteLength * 2 === f.cache.k[0]!.byteLength);
  const scale = Math.max(...f.out.flatMap((o) => [...o].map(Math.abs)));
  f.out.forEach((o, i) => {
    let d = 0;
    for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(o[v]! - h.out[i]![v]!));
    assert.ok(d < 2e-2 * scale, `step ${i}: logits differ by ${d} (scale ${scale})`);
    assert.ok(i === 0 || d > 0, "the decode steps read the rounded keys and values");
  });
});

test("a tool's tokens are appended as they are, marked forced, and read by the model like its own", () => {
  const m = model();
  const tool = { write: () => [3, 4] }; // asked after each token the model picks (not after forced ones)
  const [s] = generate(m, [[1, 5, 7]], [11], { maxNewTokens: 10, temperature: 1, intervene: () => tool });
  assert.equal(s!.tokens.length, 10);
  assert.deepEqual(s!.forced, [1, 2, 4, 5, 7, 8]);
  for (const i of s!.forced!) assert.equal(s!.tokens[i], i % 3 === 1 ? 3 : 4);
  // greedy: the model's pick after the forced text is the pick with that text in the prompt
  const [g] = generate(m, [[1, 5, 7]], [11], { maxNewTokens: 4, temperature: 0, intervene: () => tool });
  const [ref] = generate(m, [[1, 5, 7, ...g!.tokens.slice(0, 3)]], [1], { maxNewTokens: 1, temperature: 0 });
  assert.equal(g!.tokens[3], ref!.tokens[0]);
  const [plain] = generate(m, [[1, 5, 7]], [11], { maxNewTokens: 10, temperature: 1 });
  assert.equal(plain!.forced, undefined);
  assert.equal(s!.refused, undefined, "a tool's own tokens are not refusals");
});

test("a tool's allows vets the model's picks: refused tokens are drawn again, never written, marked forced", () => {
  const m = model(),
    V = m.config.vocab_size;
  const even = { write: () => null, allows: (_: readonly number[], next: number) => next % 2 === 0 };
  for (const temperature of [0, 1]) {
    const [s] = generate(m, [[1, 5, 7]], [3], { maxNewTokens: 25, temperature, intervene: () => even });
    assert.equal(s!.tokens.length, 25);
    assert.ok(
      s!.tokens.every((t) => t % 2 === 0),
      `T ${temperature}: ${s!.tokens.join(" ")}`,
    );
  }
  // greedy with a vetting tool picks the best allowed token: the argmax over even ids of the plain logits
  const [g] = generate(m, [[1, 5, 7]], [3], { maxNewTokens: 1, temperature: 0, intervene: () => even });
  const [p] = generate(m, [[1, 5, 7]], [3], { maxNewTokens: 1, temperature: 0 });
  if (p!.tokens[0]! % 2 === 0) assert.equal(g!.tokens[0], p!.tokens[0]);
  // only one token allowed: it is written every time, however unlikely
  const only = { write: () => null, allows: (_: readonly number[], next: number) => next === V - 1 };
  const [o] = generate(m, [[1, 5, 7]], [3], { maxNewTokens: 5, temperature: 1, intervene: () => only });
  assert.deepEqual(o!.tokens, [V - 1, V - 1, V - 1, V - 1, V - 1]);
  // picks the referee changed are not the model's free samples: marked like a tool's tokens, left out of RL's loss
  assert.deepEqual(o!.forced, [0, 1, 2, 3, 4]);
  assert.deepEqual(o!.refused, [0, 1, 2, 3, 4]);
  if (p!.tokens[0]! % 2 === 0) assert.equal(g!.forced, undefined, "the first pick stood");
  else assert.deepEqual(g!.forced, [0]);
});

test("decodeBatch: 128 for a tiny model, fewer past a 2 GiB KV cache, never under 32; the tokens do not change", () => {
  const m = model(),
    big = { ...m.config, num_hidden_layers: 24, num_key_value_heads: 2, head_dim: 64 }; // Qwen2.5-0.5B's cache
  assert.equal(decodeBatch(m.config, 640), 128);
  assert.equal(decodeBatch(big, 1024), 85); // 24 · 2 · 2 · 64 · 1,024 · 4 B = 24 MiB a sequence
  assert.equal(decodeBatch(big, 8192), 32);
  const rng = new Rng(5),
    prompts = Array.from({ length: 12 }, (_, i) =>
      Array.from({ length: 2 + (i % 3) }, () => rng.int(3, m.config.vocab_size - 1)),
    ),
    seeds = prompts.map((_, i) => 7 + i),
    run = (batch?: number) => generate(m, prompts, seeds, { maxNewTokens: 8, temperature: 1, batch });
  assert.deepEqual(
    run(3).map((s) => s.tokens),
    run().map((s) => s.tokens),
  );
});
