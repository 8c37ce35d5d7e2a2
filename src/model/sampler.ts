// Batched autoregressive sampling with a KV cache: temperature (0 = greedy), top-k, top-p, stop tokens,
// stop strings, max new tokens, one seeded RNG per sequence (same seed → same text). Returns token ids,
// per-token log-probs and finish reasons. Reported log-probs are under the temperature-scaled softmax
// before top-k/top-p truncation (GRPO recomputes its own with the training forward anyway).
// The Decoder class is the step-level API a server uses for continuous batching; generate() drives it.
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import { allgather, shareOf, world } from "../engine/dist.js";
import type { ModelConfig } from "./config.js";
import { type Model, KVCache, forwardCached } from "./transformer.js";

export interface SampleOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  stopTokens: readonly number[];
  stopStrings: readonly string[];
}
export const defaultSampleOptions: SampleOptions = {
  maxNewTokens: 128,
  temperature: 1,
  topK: 0,
  topP: 1,
  stopTokens: [],
  stopStrings: [],
};

export type FinishReason = "stop" | "length";
export interface Sample {
  tokens: number[];
  logprobs: number[];
  finishReason: FinishReason;
  text: string;
  /**
   * indices into tokens the model did not pick freely: a tool wrote them (Intervene.write), or its referee refused
   * the model's first pick (Intervene.allows). RL leaves them out of its loss: they are not the policy's samples.
   */
  forced?: number[];
  /** of those, the picks the referee changed (Intervene.allows refused the model's first pick) */
  refused?: number[];
}

/**
 * A tool in the loop. After each token the model picks, write is told the tokens so far and returns tokens to
 * append as they are (a calculator writing a result), or null; the model reads forced tokens like its own, it does
 * not pick them. allows, when given, vets each pick: a refused token is drawn again without it (legal moves only).
 */
export interface Intervene {
  write(tokens: readonly number[]): number[] | null;
  allows?(tokens: readonly number[], next: number): boolean;
}

let probBuf = new Float64Array(0);

/**
 * Picks a token from one row of logits; returns [token, log-prob under the scaled distribution].
 * One exp per token into a reused buffer, and none for a token more than SKIP_NATS under the best (its
 * probability, below e^-30 ≈ 1e-13, is taken as 0): the exps grow with the vocabulary, once per sampled token.
 */
export function pickToken(
  logits: Float32Array,
  o: Pick<SampleOptions, "temperature" | "topK" | "topP">,
  rng: Rng,
): [number, number] {
  const V = logits.length;
  const t = o.temperature > 0 ? o.temperature : 1;
  let mx = -Infinity,
    arg = 0;
  for (let v = 0; v < V; v++)
    if (logits[v]! > mx) {
      mx = logits[v]!;
      arg = v;
    }
  if (probBuf.length < V) probBuf = new Float64Array(V);
  const p = probBuf,
    floor = mx - SKIP_NATS * t;
  let z = 0;
  for (let v = 0; v < V; v++) {
    const l = logits[v]!;
    z += p[v] = l > floor ? Math.exp((l - mx) / t) : 0;
  }
  const logZ = Math.log(z);
  const lp = (v: number) => (logits[v]! - mx) / t - logZ;
  if (o.temperature <= 0) return [arg, lp(arg)];
  const inv = 1 / z;
  for (let v = 0; v < V; v++) p[v] = p[v]! * inv;
  if (o.topK > 0 || o.topP < 1) return pickTruncated(logits, p, V, o, rng, lp);
  let r = rng.next();
  for (let v = 0; v < V; v++) {
    r -= p[v]!;
    if (r <= 0) return [v, lp(v)];
  }
  return [arg, lp(arg)];
}

/** A token this many nats (at the sampling temperature) under the best gets probability 0 without an exp. */
const SKIP_NATS = 30;

/**
 * top-k / top-p: sample among the most likely tokens only (p holds each token's probability). Only tokens
 * with p ≥ τ are sorted, τ lowered until they hold the whole kept set (the same set a full sort keeps).
 */
function pickTruncated(
  logits: Float32Array,
  p: Float64Array,
  V: number,
  o: Pick<SampleOptions, "topK" | "topP">,
  rng: Rng,
  lp: (v: number) => number,
): [number, number] {
  let order: number[] = [];
  for (let tau = 1e-3; ; tau = tau > 1e-30 ? tau / 16 : 0) {
    // τ = 0 keeps every token
    order = [];
    let sum = 0;
    for (let v = 0; v < V; v++)
      if (p[v]! >= tau) {
        order.push(v);
        sum += p[v]!;
      }
    if (tau === 0 || (o.topK > 0 && order.length >= o.topK) || (o.topP < 1 && sum >= o.topP + 1e-9)) break;
  }
  order.sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (o.topK > 0) order = order.slice(0, o.topK);
  if (o.topP < 1) {
    let cum = 0,
      keep = 0;
    while (keep < order.length && (keep === 0 || cum < o.topP)) cum += p[order[keep++]!]!;
    order = order.slice(0, keep);
  }
  let mass = 0;
  for (const v of order) mass += p[v]!;
  let r = rng.next() * mass;
  for (const v of order) {
    r -= p[v]!;
    if (r <= 0) return [v, lp(v)];
  }
  const last = order[order.length - 1]!;
  return [last, lp(last)];
}

/** Draws this many times, each without the refused tokens, before looking through every token in logit order. */
const REDRAWS = 8;

/**
 * A pick the slot's tool allows (pickToken when it vets nothing), and whether it was the model's first, free pick.
 * A redrawn pick's log-prob is under the distribution without the refused tokens. When the tool refuses every
 * token, the model's own pick stands.
 */
function pickAllowed(logits: Float32Array, s: Slot): [number, number, boolean] {
  const allows = s.intervene?.allows?.bind(s.intervene);
  const [first, firstLp] = pickToken(logits, s.opts, s.rng);
  if (!allows || allows(s.out.tokens, first)) return [first, firstLp, true];
  const masked = Float32Array.from(logits);
  masked[first] = -Infinity;
  for (let k = 1; k < REDRAWS; k++) {
    const [tok, lp] = pickToken(masked, s.opts, s.rng);
    if (allows(s.out.tokens, tok)) return [tok, lp, false];
    masked[tok] = -Infinity;
  }
  const order = Array.from(masked.keys())
    .filter((v) => masked[v]! > -Infinity)
    .sort((a, b) => masked[b]! - masked[a]!);
  const ok = order.find((v) => allows(s.out.tokens, v));
  return ok === undefined ? [first, firstLp, false] : [ok, 0, false];
}

function checkOptions(o: SampleOptions): void {
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 0))
    throw new FrugalError("SAMPLE", `maxNewTokens must be a non-negative integer, got ${o.maxNewTokens}`);
  if (!(o.temperature >= 0 && Number.isFinite(o.temperature)))
    throw new FrugalError("SAMPLE", `temperature must be ≥ 0, got ${o.temperature}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new FrugalError("SAMPLE", `topP must be in (0, 1], got ${o.topP}`);
  if (!(Number.isInteger(o.topK) && o.topK >= 0))
    throw new FrugalError("SAMPLE", `topK must be a non-negative integer, got ${o.topK}`);
}

/** One sequence in flight. */
interface Slot {
  prompt: number[];
  opts: SampleOptions;
  rng: Rng;
  out: Sample;
  pos: number;
  next: number;
  decode?: (ids: number[]) => string;
  intervene?: Intervene;
  /** tokens the tool wrote that are still to be fed */
  queue: number[];
}

/**
 * A fixed set of KV-cache slots; sequences join (prefill) and leave (finish) between steps, and each
 * step() decodes one token for every live sequence in one batched forward.
 */
export class Decoder {
  readonly cache: KVCache;
  private readonly live = new Map<number, Slot>();
  private readonly free: number[];
  /**
   * fusedDecode false: decode op by op (the benchmark's reference); the tokens are the same. kvBf16: keep keys and
   * values as bfloat16 (half the cache's bytes); by default when the model decodes from bfloat16 weights (--bf16).
   */
  constructor(
    readonly model: Model,
    slots: number,
    readonly maxContext: number,
    readonly fusedDecode = true,
    kvBf16 = model.half !== undefined,
  ) {
    this.cache = new KVCache(model.config, slots, maxContext, kvBf16);
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }
  get active(): number {
    return this.live.size;
  }
  get capacity(): number {
    return this.free.length;
  }

  /** Prefills a prompt into a free slot and samples its first token; returns the slot id. */
  add(
    prompt: readonly number[],
    opts: SampleOptions,
    seed: number,
    decode?: (ids: number[]) => string,
    intervene?: Intervene,
  ): number {
    return this.addMany([{ prompt, opts, seed, decode, intervene }])[0]!;
  }

  /**
   * Prefills several prompts in one batched forward (right-padded to the longest: the padding's cache
   * entries lie past each prompt and are overwritten before any attention reads them); returns slot ids.
   */
  addMany(
    reqs: readonly {
      prompt: readonly number[];
      opts: SampleOptions;
      seed: number;
      decode?: (ids: number[]) => string;
      intervene?: Intervene;
    }[],
  ): number[] {
    for (const r of reqs) {
      checkOptions(r.opts);
      if (r.prompt.length === 0) throw new FrugalError("SAMPLE", "the prompt is empty; pass at least one token");
      if (r.prompt.length + r.opts.maxNewTokens > this.maxContext) {
        throw new FrugalError(
          "CONTEXT",
          `prompt of ${r.prompt.length} tokens + ${r.opts.maxNewTokens} new tokens exceeds the context of ${this.maxContext}; shorten the prompt or lower max tokens`,
        );
      }
    }
    if (reqs.length > this.free.length)
      throw new FrugalError("BUSY", `internal: ${reqs.length} prompts for ${this.free.length} free decode slots`);
    const B = reqs.length,
      Tn = Math.max(...reqs.map((r) => r.prompt.length)),
      V = this.model.config.vocab_size;
    const ids = new Int32Array(B * Tn),
      slots = reqs.map(() => this.free.pop()!);
    reqs.forEach((r, b) => ids.set(r.prompt, b * Tn));
    const logits = forwardCached(this.model, this.cache, ids, new Int32Array(B), Int32Array.from(slots), Tn, B === 1);
    reqs.forEach((r, b) => {
      const s: Slot = {
        prompt: [...r.prompt],
        opts: r.opts,
        rng: new Rng(r.seed),
        out: { tokens: [], logprobs: [], finishReason: "length", text: "" },
        pos: r.prompt.length,
        next: -1,
        decode: r.decode,
        intervene: r.intervene,
        queue: [],
      };
      this.live.set(slots[b]!, s);
      const row = B === 1 ? 0 : b * Tn + r.prompt.length - 1;
      this.accept(slots[b]!, s, logits.data.subarray(row * V, (row + 1) * V));
    });
    E.endStep();
    return slots;
  }

  /** Records the token picked from logits; finishes the slot on a stop or at the length limit. */
  private accept(id: number, s: Slot, logits: Float32Array): void {
    if (s.opts.maxNewTokens === 0) return this.finish(id, "length");
    const forced = s.queue.length > 0;
    const [tok, lp, free] = forced ? [s.queue.shift()!, NaN, false] : pickAllowed(logits, s);
    if (!forced && s.opts.stopTokens.includes(tok)) return this.finish(id, "stop");
    if (!free) (s.out.forced ??= []).push(s.out.tokens.length);
    if (!free && !forced) (s.out.refused ??= []).push(s.out.tokens.length);
    s.out.tokens.push(tok);
    s.out.logprobs.push(lp);
    if (!forced && s.intervene) s.queue.push(...(s.intervene.write(s.out.tokens) ?? []));
    if (s.opts.stopStrings.length && s.decode) {
      const text = s.decode(s.out.tokens);
      const hit = s.opts.stopStrings.find((x) => x && text.includes(x));
      if (hit !== undefined) {
        s.out.text = text.slice(0, text.indexOf(hit));
        return this.finish(id, "stop", true);
      }
    }
    if (s.out.tokens.length >= s.opts.maxNewTokens) return this.finish(id, "length");
    s.next = tok;
  }

  private readonly done = new Map<number, Sample>();
  private finish(id: number, reason: FinishReason, textSet = false): void {
    const s = this.live.get(id)!;
    s.out.finishReason = reason;
    if (!textSet && s.decode) s.out.text = s.decode(s.out.tokens);
    this.live.delete(id);
    this.free.push(id);
    this.done.set(id, s.out);
  }

  /** Finished samples since the last call, by slot id. */
  takeFinished(): Map<number, Sample> {
    const d = new Map(this.done);
    this.done.clear();
    return d;
  }
  /** Tokens so far of a live slot (for streaming). */
  peek(id: number): Sample | undefined {
    return this.live.get(id)?.out;
  }
  /** Drops a live sequence (a client went away); its slot is free at once. */
  cancel(id: number): void {
    if (this.live.delete(id)) this.free.push(id);
  }

  /** One decode step for every live sequence. */
  step(): void {
    if (this.live.size === 0) return;
    const ids = [...this.live.keys()],
      B = ids.length;
    const tokens = new Int32Array(B),
      pos = new Int32Array(B),
      slot = Int32Array.from(ids);
    ids.forEach((id, b) => {
      const s = this.live.get(id)!;
      tokens[b] = s.next;
      pos[b] = s.pos;
    });
    const logits = forwardCached(this.model, this.cache, tokens, pos, slot, 1, true, this.fusedDecode);
    const V = this.model.config.vocab_size;
    ids.forEach((id, b) => {
      const s = this.live.get(id)!;
      s.pos++;
      this.accept(id, s, logits.data.subarray(b * V, (b + 1) * V));
    });
    E.endStep();
  }
}

/**
 * How many sequences generate() decodes at once unless told: 128, fewer (down to 32) where their float32 KV cache
 * would pass 2 GiB. A sequence's tokens do not depend on the batch; larger batches spread each step's fixed costs.
 */
export function decodeBatch(config: ModelConfig, contextTokens: number): number {
  const slotBytes = config.num_hidden_layers * 2 * KVCache.slotFloats(config, contextTokens) * 4;
  return Math.max(32, Math.min(128, Math.floor(2 ** 31 / slotBytes)));
}

/**
 * Samples one completion per prompt (prompts[i] seeded with seeds[i]) in batches of `batch` (default decodeBatch);
 * `onFinished` is told how many are done whenever that grows (progress; it cannot change what is sampled).
 */
export function generate(
  model: Model,
  prompts: readonly (readonly number[])[],
  seeds: readonly number[],
  opts: Partial<SampleOptions> & {
    batch?: number;
    decode?: (ids: number[]) => string;
    fusedDecode?: boolean;
    /** the KV cache in bfloat16 (default: when the model decodes from bfloat16 weights) */
    kvBf16?: boolean;
    onFinished?: (done: number) => void;
    /** a tool for prompt i (see Intervene), or undefined */
    intervene?: (i: number) => Intervene | undefined;
  } = {},
): Sample[] {
  const o: SampleOptions = { ...defaultSampleOptions, ...opts };
  if (seeds.length !== prompts.length)
    throw new FrugalError("SAMPLE", `${prompts.length} prompts but ${seeds.length} seeds`);
  const longest = Math.max(1, ...prompts.map((p) => p.length));
  const ctx = Math.min(model.config.max_position_embeddings, longest + o.maxNewTokens);
  const dec = new Decoder(
    model,
    Math.max(1, Math.min(opts.batch ?? decodeBatch(model.config, ctx), prompts.length)),
    ctx,
    opts.fusedDecode ?? true,
    opts.kvBf16,
  );
  const results: Sample[] = new Array(prompts.length);
  const slotOf = new Map<number, number>();
  let nextPrompt = 0,
    done = 0;
  const collect = () => {
    const before = done;
    for (const [slot, s] of dec.takeFinished()) {
      results[slotOf.get(slot)!] = s;
      done++;
    }
    if (done > before) opts.onFinished?.(done);
  };
  while (nextPrompt < prompts.length || dec.active > 0) {
    while (dec.capacity > 0 && nextPrompt < prompts.length) {
      const i = nextPrompt++;
      // record the mapping before add(): a prompt can finish during its own prefill
      const slot = dec.add(prompts[i]!, o, seeds[i]!, opts.decode, opts.intervene?.(i));
      slotOf.set(slot, i);
      collect();
    }
    dec.step();
    collect();
  }
  return results;
}

/**
 * generate() with the prompts split across the MPI ranks in contiguous blocks of `unit` (a GRPO group stays on
 * one rank) and the samples gathered back: every rank returns all of them, the same as one process would.
 */
export function generateShared(
  model: Model,
  prompts: readonly (readonly number[])[],
  seeds: readonly number[],
  opts: Parameters<typeof generate>[3] & { unit?: number } = {},
): Sample[] {
  const w = world();
  if (w.size <= 1) return generate(model, prompts, seeds, opts);
  const [i0, i1] = shareOf(prompts.length, opts.unit ?? 1, w),
    scale = prompts.length / Math.max(1, i1 - i0);
  const mine = generate(model, prompts.slice(i0, i1), seeds.slice(i0, i1), {
    ...opts,
    intervene: opts.intervene && ((i) => opts.intervene!(i + i0)),
    onFinished: (n) => opts.onFinished?.(Math.min(prompts.length, Math.round(n * scale))),
  });
  return allgather(mine).flat();
}
