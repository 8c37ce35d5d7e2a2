// Continuous batching for the server: requests wait in a queue, join the Decoder's KV-cache slots as
// slots free up, and every tick decodes one token for all of them in one batched forward. Each request
// gets its text as it grows, a finish callback, and its share of the measured compute time (a step's
// wall time split evenly over the sequences in it). Cancelling frees the slot at once. No HTTP here.
import { FrugalError, internal } from "../common/errors.js";
import { Decoder, type FinishReason, type SampleOptions } from "../model/sampler.js";
import type { Model } from "../model/transformer.js";

export interface Job {
  prompt: number[];
  opts: SampleOptions;
  seed: number;
  decode: (ids: number[]) => string;
  /** the whole text so far, after each step that added to it (omit when only the end matters: no decoding per step) */
  onText?(text: string, tokens: number): void;
  onDone(r: { text: string; tokens: number; finishReason: FinishReason; computeS: number }): void;
  onError(e: Error): void;
}

/** A user error stays as it is; anything else is our bug. */
const asFrugal = (e: unknown): FrugalError => (e instanceof FrugalError ? e : internal(`${(e as Error).message}`));

interface Live {
  job: Job;
  slot: number;
  computeS: number;
  shown: number;
}

export class BatchEngine {
  private readonly dec: Decoder;
  private readonly queue: Job[] = [];
  private readonly live = new Map<number, Live>();
  private running = false;
  /** tokens decoded and steps run since start (for metrics) */
  stats = { steps: 0, tokens: 0, maxBatch: 0 };

  constructor(
    readonly model: Model,
    readonly slots: number,
  ) {
    this.dec = new Decoder(model, slots, model.config.max_position_embeddings);
  }

  get active(): number {
    return this.live.size;
  }
  get waiting(): number {
    return this.queue.length;
  }

  submit(job: Job): { cancel(): void } {
    this.queue.push(job);
    this.kick();
    return {
      cancel: () => {
        const q = this.queue.indexOf(job);
        if (q >= 0) {
          this.queue.splice(q, 1);
          return;
        }
        for (const [slot, l] of this.live)
          if (l.job === job) {
            this.dec.cancel(slot);
            this.live.delete(slot);
          }
      },
    };
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => this.tick());
  }

  private tick(): void {
    try {
      this.admit();
      if (this.live.size > 0) {
        const t0 = performance.now(),
          n = this.live.size;
        this.dec.step();
        const share = (performance.now() - t0) / 1000 / n;
        for (const l of this.live.values()) l.computeS += share;
        this.stats.steps++;
        this.stats.tokens += n;
        this.stats.maxBatch = Math.max(this.stats.maxBatch, n);
        this.collect();
      }
    } catch (e) {
      for (const [slot, l] of this.live) {
        this.dec.cancel(slot);
        l.job.onError(e as Error);
      }
      this.live.clear();
    }
    if (this.live.size > 0 || this.queue.length > 0) setImmediate(() => this.tick());
    else this.running = false;
  }

  /** Moves waiting jobs into free slots, prefilling them together in one forward. */
  private admit(): void {
    const jobs = this.queue.splice(0, Math.min(this.dec.capacity, this.queue.length));
    if (jobs.length === 0) return;
    const t0 = performance.now();
    let slots: number[];
    try {
      slots = this.dec.addMany(jobs.map((j) => ({ prompt: j.prompt, opts: j.opts, seed: j.seed, decode: j.decode })));
    } catch (e) {
      // one bad job must not take the others down: admit them one by one, failing only the bad ones
      if (jobs.length > 1) {
        this.queue.unshift(...jobs.slice(1));
        return this.admitOne(jobs[0]!);
      }
      return jobs[0]!.onError(asFrugal(e));
    }
    const share = (performance.now() - t0) / 1000 / jobs.length;
    jobs.forEach((job, i) => this.live.set(slots[i]!, { job, slot: slots[i]!, computeS: share, shown: 0 }));
    this.collect();
  }

  private admitOne(job: Job): void {
    try {
      const t0 = performance.now(),
        slot = this.dec.add(job.prompt, job.opts, job.seed, job.decode);
      this.live.set(slot, { job, slot, computeS: (performance.now() - t0) / 1000, shown: 0 });
      this.collect();
    } catch (e) {
      job.onError(asFrugal(e));
    }
  }

  private collect(): void {
    const finished = this.dec.takeFinished();
    for (const [slot, l] of this.live) {
      const done = finished.get(slot);
      if (done) {
        this.live.delete(slot);
        l.job.onDone({
          text: done.text,
          tokens: done.tokens.length,
          finishReason: done.finishReason,
          computeS: l.computeS,
        });
        continue;
      }
      if (!l.job.onText) continue;
      const s = this.dec.peek(slot);
      if (s && s.tokens.length > l.shown) {
        l.shown = s.tokens.length;
        l.job.onText(l.job.decode(s.tokens), s.tokens.length);
      }
    }
  }
}
