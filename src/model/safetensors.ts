// safetensors read/write: 8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets}} (+ optional __metadata__), then the raw little-endian data.
// Reads F32, F16 and BF16 (widened to float32); writes F32, and BF16 for data given as bfloat16 bits. Every field is checked before use and
// errors name the file, the tensor and the fix. No file I/O policy here (common/files.ts writes).
import { readFileSync } from "node:fs";
import { FrugalError } from "../common/errors.js";

const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface SafeTensors {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
}

function bad(file: string, msg: string): FrugalError {
  return new FrugalError("SAFETENSORS", `${file}: ${msg}`);
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(dtype: string, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  else if (dtype === "BF16") {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
  } else for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
  return out;
}

/** Parses a safetensors buffer; `file` names it in errors. */
export function parseSafetensors(buf: Uint8Array, file: string): SafeTensors {
  if (buf.length < 8) throw bad(file, `file is ${buf.length} bytes, too short for a safetensors header (truncated?)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen > MAX_HEADER || 8 + hlen > buf.length)
    throw bad(
      file,
      `header claims ${hlen} bytes but the file has ${buf.length - 8} after the length field (truncated or not safetensors)`,
    );
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, 8 + hlen))) as Record<
      string,
      unknown
    >;
  } catch (e) {
    throw bad(file, `header is not valid JSON (${(e as Error).message}); the file is corrupted`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw bad(file, "header must be a JSON object");
  const data = buf.subarray(8 + hlen);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const spans: [number, number, string][] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = String(info?.dtype);
    if (!(dtype in SIZES)) throw bad(file, `tensor ${name} has dtype ${dtype}; frugal reads F32, F16 and BF16`);
    const shape = info.shape,
      offs = info.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw bad(file, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isInteger(o) && o >= 0) ||
      offs[1] < offs[0]
    )
      throw bad(file, `tensor ${name} has invalid data_offsets ${JSON.stringify(offs)}`);
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    const [b, e] = offs as [number, number];
    if (e - b !== n * SIZES[dtype]!)
      throw bad(
        file,
        `tensor ${name}: shape [${shape.join(", ")}] × ${dtype} needs ${n * SIZES[dtype]!} bytes, data_offsets give ${e - b}`,
      );
    if (e > data.length)
      throw bad(
        file,
        `tensor ${name} ends at byte ${e} of the data but only ${data.length} bytes follow the header (truncated file)`,
      );
    spans.push([b, e, name]);
    tensors.set(name, { shape: shape as number[], data: decode(dtype, data.subarray(b, e), n) });
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) throw bad(file, `tensors ${spans[i - 1]![2]} and ${spans[i]![2]} overlap`);
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafeTensors {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw bad(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseSafetensors(buf, file);
}

/** Serialises float32 tensors (header padded to 8 bytes, as the reference implementation does). */
export function encodeSafetensors(
  tensors: Map<string, { shape: readonly number[]; data: Float32Array | Uint16Array }>,
  metadata: Record<string, string> = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of tensors) {
    header[name] = {
      dtype: t.data instanceof Uint16Array ? "BF16" : "F32",
      shape: t.shape,
      data_offsets: [off, off + t.data.byteLength],
    };
    off += t.data.byteLength;
  }
  let h = JSON.stringify(header);
  h += " ".repeat((8 - (Buffer.byteLength(h) % 8)) % 8);
  const hb = Buffer.from(h, "utf8"),
    out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let p = 8 + hb.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, p);
    p += t.data.byteLength;
  }
  return out;
}
