// The main thread's side of the GPU: starts the GPU worker, waits on it synchronously (Atomics.wait), and
// keeps every host array's GPU copy coherent. Arrays the engine tracks (tensors, gradients, optimizer state)
// stay on the GPU between kernels and come back only when the host reads them; any other array is uploaded
// for each kernel that reads it and read back after each kernel that writes it (always correct, slower).
import { Worker } from "node:worker_threads";
import { FrugalError, internal } from "../../common/errors.js";
import { bufList, paramList, SHADERS } from "./shaders.js";
import { FAILED, PENDING, type Command } from "./protocol.js";
import type { Residency } from "../tensor.js";

type Arr = Float32Array | Int32Array | Uint16Array;
/** host: the host copy is newer; gpu: the GPU copy is newer; both: they agree. */
interface Slot {
  id: number;
  tracked: boolean;
  state: "host" | "gpu" | "both";
}

export interface GpuStats {
  uploads: number;
  uploadBytes: number;
  reads: number;
  readBytes: number;
  dispatches: number;
}

const WAIT_MS = Number(process.env.FRUGAL_WEBGPU_TIMEOUT_MS ?? 120_000);

export class Gpu implements Residency {
  readonly adapter: string;
  /** whether the webgpu kernels are the active set (then tensors' .dev skips the host copy) */
  active = false;
  readonly stats: GpuStats = { uploads: 0, uploadBytes: 0, reads: 0, readBytes: 0, dispatches: 0 };
  /** FRUGAL_WEBGPU_PROFILE=1: each dispatch waits for the GPU, and its wall time is summed here per shader. */
  readonly profile =
    process.env.FRUGAL_WEBGPU_PROFILE === "1" ? new Map<string, { calls: number; ms: number }>() : null;
  /** Fault injection for tests: the device is destroyed at this dispatch count, as a driver reset would. */
  loseAt = -1;
  private worker: Worker;
  private sab: SharedArrayBuffer;
  private ctrl: Int32Array;
  private nextId = 1;
  private slots = new WeakMap<ArrayBuffer, Slot>();
  private tracked = new WeakSet<ArrayBuffer>();
  private freed = new FinalizationRegistry<number>((id) => this.post({ t: "free", id }));
  private dead = "";

  private constructor(worker: Worker, sab: SharedArrayBuffer, adapter: string) {
    this.worker = worker;
    this.sab = sab;
    this.ctrl = new Int32Array(sab, 0, 4);
    this.adapter = adapter;
  }

  /** Starts the worker and its device; returns why not when there is no adapter or no Dawn. */
  static open(backend = process.env.FRUGAL_WEBGPU_BACKEND ?? "auto"): Gpu | string {
    // Dawn's GL backend on a machine without a display; set here, since a worker's env does not reach C code
    process.env.EGL_PLATFORM ??= "surfaceless";
    const sab = new SharedArrayBuffer(16 + (1 << 20));
    const worker = new Worker(new URL("./worker.js", import.meta.url));
    worker.unref();
    const ctrl = new Int32Array(sab, 0, 4);
    worker.postMessage([{ t: "init", sab, backend } satisfies Command]);
    const r = Atomics.wait(ctrl, 0, PENDING, WAIT_MS);
    const text = new TextDecoder().decode(new Uint8Array(sab, 16, ctrl[1]!).slice());
    if (r === "timed-out" || ctrl[0] === FAILED) {
      void worker.terminate();
      return r === "timed-out" ? `the GPU worker did not start within ${WAIT_MS} ms` : text;
    }
    const gpu = new Gpu(worker, sab, text);
    // Node ends a worker mid-call at exit, and Dawn aborts the process if that call was a GPU one: let it go idle
    process.once("exit", () => {
      try {
        gpu.sync();
      } catch {
        // a lost device has nothing left to finish
      }
    });
    return gpu;
  }

  /** Commands go in batches (one postMessage costs ~10 µs): flushed at 32, before a read, or when JS goes idle. */
  private batch: Command[] = [];
  private transfers: ArrayBuffer[] = [];
  private post(cmd: Command, transfer: ArrayBuffer[] = []): void {
    if (this.dead) return;
    if (this.batch.length === 0) queueMicrotask(() => this.flush());
    this.batch.push(cmd);
    this.transfers.push(...transfer);
    if (this.batch.length >= 32) this.flush();
  }
  private flush(): void {
    if (!this.batch.length || this.dead) return;
    this.worker.postMessage(this.batch, this.transfers);
    this.batch = [];
    this.transfers = [];
  }

  /** Reads `bytes` at byte `off` of GPU buffer `id` into `into`, waiting for every command before it. */
  private readRaw(id: number, off: number, bytes: number, into: Uint8Array): void {
    if (this.dead) throw new FrugalError("DEVICE", `the GPU is unusable: ${this.dead}. Resume on the CPU kernels.`);
    const need = Math.ceil(bytes / 4) * 4;
    if (need + 16 > this.sab.byteLength) {
      this.sab = new SharedArrayBuffer(16 + Math.max(need, 2 * (this.sab.byteLength - 16)));
      this.ctrl = new Int32Array(this.sab, 0, 4);
      this.post({ t: "staging", sab: this.sab });
    }
    Atomics.store(this.ctrl, 0, PENDING);
    this.post({ t: "read", id, off, bytes: need });
    this.flush();
    const r = Atomics.wait(this.ctrl, 0, PENDING, WAIT_MS);
    if (r === "timed-out" || this.ctrl[0] === FAILED) {
      const why =
        r === "timed-out"
          ? `no answer from the GPU within ${WAIT_MS} ms`
          : new TextDecoder().decode(new Uint8Array(this.sab, 16, this.ctrl[1]!).slice());
      this.dead = why;
      throw new FrugalError(
        "DEVICE",
        `webgpu: ${why}; the GPU is unusable for the rest of this process (FRUGAL_KERNELS=native uses the CPU)`,
      );
    }
    into.set(new Uint8Array(this.sab, 16, bytes));
    this.stats.reads++;
    this.stats.readBytes += bytes;
  }

  /** Waits until the GPU has run every command so far; throws if any failed or the device was lost. */
  sync(): void {
    this.readRaw(this.slot(this.syncArray).id, 0, 0, new Uint8Array(0));
  }
  private readonly syncArray = new Float32Array(4);

  private slot(a: Arr): Slot {
    let s = this.slots.get(a.buffer as ArrayBuffer);
    if (!s) {
      s = { id: this.nextId++, tracked: this.tracked.has(a.buffer as ArrayBuffer), state: "host" };
      this.slots.set(a.buffer as ArrayBuffer, s);
      this.post({ t: "alloc", id: s.id, bytes: a.buffer.byteLength });
      this.freed.register(a.buffer, s.id);
    }
    return s;
  }

  /** Uploads bytes [from, to) of a's buffer, widened to whole words. */
  private upload(s: Slot, a: Arr, from: number, to: number): void {
    const lo = from & ~3,
      hi = Math.min(a.buffer.byteLength, (to + 3) & ~3);
    const data = new Uint8Array(Math.ceil((hi - lo) / 4) * 4);
    data.set(new Uint8Array(a.buffer, lo, hi - lo));
    this.stats.uploads++;
    this.stats.uploadBytes += data.length;
    this.post({ t: "write", id: s.id, off: lo, data }, [data.buffer]);
  }

  /** The engine keeps this array (a tensor's, a gradient's, optimizer state): it may stay on the GPU. */
  track(a: Arr): void {
    this.tracked.add(a.buffer as ArrayBuffer);
    const s = this.slots.get(a.buffer as ArrayBuffer);
    if (s && !s.tracked) ((s.tracked = true), (s.state = "host"));
  }

  /** The host is about to read or write a tracked array: bring its GPU copy home and mark the host newer. */
  toHost(a: Arr): void {
    const s = this.slots.get(a.buffer as ArrayBuffer);
    if (!s?.tracked) return;
    // after a lost device the GPU copy is gone: the host copy is all there is (a resumed run overwrites it)
    if (s.state === "gpu" && !this.dead) this.readRaw(s.id, 0, a.buffer.byteLength, new Uint8Array(a.buffer));
    s.state = "host";
  }

  /** a's contents are undefined (a fresh op output): neither side needs the other's copy. */
  fresh(a: Arr): void {
    const s = this.slots.get(a.buffer as ArrayBuffer);
    if (s?.tracked) s.state = "both";
  }

  /** The host zeroed a (a view of a tracked array): zero the same range on the GPU. */
  zero(a: Float32Array): void {
    const s = this.slots.get(a.buffer as ArrayBuffer);
    if (!s?.tracked || s.state === "host" || a.byteLength === 0) return;
    this.post({ t: "clear", id: s.id, off: a.byteOffset, bytes: a.byteLength }); // float32 views are word-aligned
  }

  /**
   * Runs shader `k` over `arrays` (in its buffer order) with uniform `params` (in its parameter order, element
   * offsets of the arrays excluded: they are appended from the views, plus `extra`), on `groups` workgroups.
   */
  run(k: string, arrays: Arr[], params: number[], groups: [number, number, number], extra: number[] = []): void {
    const def = SHADERS[k]!,
      bufs = bufList(def),
      names = paramList(def);
    const slots = arrays.map((a) => {
      const s = this.slot(a);
      if (s.tracked) {
        if (s.state === "host") (this.upload(s, a, 0, a.buffer.byteLength), (s.state = "both"));
      } else this.upload(s, a, a.byteOffset, a.byteOffset + a.byteLength);
      return s;
    });
    const offsets = arrays.map((a, i) => a.byteOffset / a.BYTES_PER_ELEMENT + (extra[i] ?? 0));
    const values = [...params, ...offsets.slice(0, names.length - params.length)];
    if (values.length !== names.length)
      throw internal(`shader ${k} takes ${names.length} parameters, got ${values.length}`);
    const u = new ArrayBuffer(Math.ceil((names.length * 4) / 16) * 16),
      u32 = new Uint32Array(u),
      f32 = new Float32Array(u);
    names.forEach(([, isF], i) => (isF ? (f32[i] = values[i]!) : (u32[i] = values[i]! >>> 0)));
    const t0 = this.profile ? performance.now() : 0;
    this.post({ t: "run", k, ids: slots.map((s) => s.id), u, n: groups }, [u]);
    if (++this.stats.dispatches === this.loseAt) this.post({ t: "lose" });
    arrays.forEach((a, i) => {
      if (!bufs[i]![2]) return;
      const s = slots[i]!;
      if (s.tracked) s.state = "gpu";
      else this.readBack(s, a);
    });
    if (this.profile) {
      this.sync();
      const p = this.profile.get(k) ?? { calls: 0, ms: 0 };
      this.profile.set(k, { calls: p.calls + 1, ms: p.ms + performance.now() - t0 });
    }
  }

  private readBack(s: Slot, a: Arr): void {
    const lo = a.byteOffset & ~3,
      hi = (a.byteOffset + a.byteLength + 3) & ~3,
      tmp = new Uint8Array(hi - lo);
    this.readRaw(s.id, lo, hi - lo, tmp);
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(
      tmp.subarray(a.byteOffset - lo, a.byteOffset - lo + a.byteLength),
    );
  }
}
