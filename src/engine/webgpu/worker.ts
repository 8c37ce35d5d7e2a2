// The GPU thread: owns the WebGPU device and every GPU buffer, and executes the engine thread's commands in order
// (allocate, upload, clear, run a shader, read back). Reads answer through a SharedArrayBuffer and
// Atomics.notify, so the engine can wait synchronously. It never decides what to upload: bridge.ts does.
// In Node the device is Dawn's (npm webgpu); in a browser the bundler maps "webgpu" to navigator.gpu.
import { parentPort } from "node:worker_threads";
import { FAILED, OK, type Command } from "./protocol.js";
import { bufList, SHADERS, wgsl } from "./shaders.js";

let gpuRoot: GPU | null = null; // Dawn crashes if the object create() returned is collected: keep it for life
let device: GPUDevice;
let ctrl: Int32Array, payload: Uint8Array;
const buffers = new Map<number, GPUBuffer>();
const pipelines = new Map<string, GPUComputePipeline>();
let enc: GPUCommandEncoder | null = null,
  pass: GPUComputePassEncoder | null = null,
  flushQueued = false,
  firstError = "",
  lost = "";
let trash: GPUBuffer[] = [];
/** after the messages already queued (a browser worker has no setImmediate) */
const later: (f: () => void) => void = globalThis.setImmediate ?? ((f) => setTimeout(f, 0));

function answer(flag: number, text = ""): void {
  const bytes = new TextEncoder().encode(text);
  payload.set(bytes.subarray(0, payload.length));
  ctrl[1] = Math.min(bytes.length, payload.length);
  Atomics.store(ctrl, 0, flag);
  Atomics.notify(ctrl, 0);
}

async function init(cmd: { sab: SharedArrayBuffer; backend: string }): Promise<void> {
  ctrl = new Int32Array(cmd.sab, 0, 4);
  payload = new Uint8Array(cmd.sab, 16);
  try {
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    // auto: the platform's native API (Vulkan, Metal, D3D12), then OpenGL ES (Mesa on a machine without a GPU);
    // FRUGAL_WEBGPU_BACKEND=vulkan|opengles|metal|d3d12 asks for one
    const compat: GPURequestAdapterOptions = { featureLevel: "compatibility" };
    const tries: [string[], GPURequestAdapterOptions][] =
      cmd.backend === "auto"
        ? [
            [[], {}],
            [["backend=opengles"], compat],
          ]
        : [[[`backend=${cmd.backend}`], cmd.backend === "opengles" ? compat : {}]];
    let adapter: GPUAdapter | null = null;
    for (const [flags, opts] of tries) {
      gpuRoot = create(flags);
      adapter = await gpuRoot.requestAdapter(opts);
      if (adapter) break;
    }
    if (!adapter) return answer(FAILED, "no WebGPU adapter");
    const l = adapter.limits;
    device = await adapter.requestDevice({
      requiredLimits: {
        maxComputeInvocationsPerWorkgroup: Math.min(256, l.maxComputeInvocationsPerWorkgroup),
        maxComputeWorkgroupSizeX: Math.min(256, l.maxComputeWorkgroupSizeX),
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
      },
    });
    device.onuncapturederror = (e) => {
      firstError ||= e.error.message;
    };
    void device.lost.then((info) => {
      lost = info.message || "the device was lost";
    });
    const info = adapter.info;
    answer(OK, `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.replace(/\s+/g, " ").trim());
  } catch (e) {
    answer(FAILED, (e as Error).message.split("\n")[0] ?? String(e));
  }
}

function pipeline(k: string): GPUComputePipeline {
  let p = pipelines.get(k);
  if (!p) {
    const module = device.createShaderModule({ code: wgsl(k) });
    p = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    pipelines.set(k, p);
  }
  return p;
}

function encoder(): GPUCommandEncoder {
  return (enc ??= device.createCommandEncoder());
}
function endPass(): void {
  pass?.end();
  pass = null;
}
/** One mapped uniform buffer per submission, a 256-byte slot per dispatch (not a buffer per dispatch). */
const SLOT_BYTES = 256,
  SLOTS = 64;
let arena: { buf: GPUBuffer; bytes: Uint8Array; used: number } | null = null;
function uniformSlot(u: ArrayBuffer): GPUBufferBinding {
  if (!arena) {
    const buf = device.createBuffer({
      size: SLOTS * SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    arena = { buf, bytes: new Uint8Array(buf.getMappedRange()), used: 0 };
  }
  const offset = arena.used++ * SLOT_BYTES;
  arena.bytes.set(new Uint8Array(u), offset);
  return { buffer: arena.buf, offset, size: u.byteLength };
}

function submit(): void {
  endPass();
  if (arena) {
    arena.buf.unmap(); // its slots are bound by this submission's dispatches
    trash.push(arena.buf);
    arena = null;
  }
  if (enc) device.queue.submit([enc.finish()]);
  enc = null;
  for (const b of trash) b.destroy();
  trash = [];
}
function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  later(() => {
    flushQueued = false;
    submit();
  });
}

/** A temporary copy of buffer `id` (a read binding aliasing a written one, which WebGPU forbids). */
function copyOf(id: number): GPUBuffer {
  const src = buffers.get(id)!;
  const tmp = device.createBuffer({ size: src.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  endPass();
  encoder().copyBufferToBuffer(src, 0, tmp, 0, src.size);
  trash.push(tmp);
  return tmp;
}

function run(cmd: { k: string; ids: number[]; u: ArrayBuffer; n: [number, number, number] }): void {
  const p = pipeline(cmd.k),
    bufs = bufList(SHADERS[cmd.k]!);
  const written = new Set(cmd.ids.filter((_, i) => bufs[i]![2]));
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: uniformSlot(cmd.u) }];
  cmd.ids.forEach((id, i) => {
    const b = !bufs[i]![2] && written.has(id) ? copyOf(id) : buffers.get(id)!;
    entries.push({ binding: i + 1, resource: { buffer: b } });
  });
  const group = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries });
  pass ??= encoder().beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(...cmd.n);
  if (arena!.used >= SLOTS) submit();
  else queueFlush();
}

async function read(cmd: { id: number; off: number; bytes: number }): Promise<void> {
  const size = Math.ceil(cmd.bytes / 4) * 4;
  if (size > payload.length) return answer(FAILED, `internal: read of ${size} bytes exceeds the staging area`);
  const dst = device.createBuffer({
    size: Math.max(4, size),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  endPass();
  if (size > 0) encoder().copyBufferToBuffer(buffers.get(cmd.id)!, cmd.off, dst, 0, size);
  submit();
  try {
    await dst.mapAsync(GPUMapMode.READ);
  } catch (e) {
    return answer(FAILED, lost || firstError || (e as Error).message);
  }
  if (lost || firstError) {
    dst.destroy();
    return answer(FAILED, lost ? `device lost: ${lost}` : firstError);
  }
  payload.set(new Uint8Array(dst.getMappedRange(), 0, size));
  dst.unmap();
  dst.destroy();
  answer(OK);
}

function handle(cmd: Command): void {
  switch (cmd.t) {
    case "init":
      void init(cmd);
      return;
    case "staging":
      payload = new Uint8Array(cmd.sab, 16);
      ctrl = new Int32Array(cmd.sab, 0, 4);
      return;
    case "alloc":
      buffers.set(
        cmd.id,
        device.createBuffer({
          size: Math.max(16, Math.ceil(cmd.bytes / 4) * 4),
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        }),
      );
      return;
    case "free": {
      const b = buffers.get(cmd.id);
      buffers.delete(cmd.id);
      if (b) trash.push(b);
      return;
    }
    case "write": {
      const size = Math.ceil(cmd.data.length / 4) * 4;
      const st = device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Uint8Array(st.getMappedRange()).set(cmd.data);
      st.unmap();
      endPass();
      encoder().copyBufferToBuffer(st, 0, buffers.get(cmd.id)!, cmd.off, size);
      trash.push(st);
      queueFlush();
      return;
    }
    case "clear":
      endPass();
      encoder().clearBuffer(buffers.get(cmd.id)!, cmd.off, cmd.bytes);
      queueFlush();
      return;
    case "run":
      run(cmd);
      return;
    case "read":
      void read(cmd);
      return;
    case "lose":
      device.destroy(); // tests: what a lost device does to a run
      return;
  }
}

parentPort?.on("message", (cmds: Command[]) => {
  for (const cmd of cmds) {
    try {
      handle(cmd);
    } catch (e) {
      firstError ||= (e as Error).message;
    }
  }
});
