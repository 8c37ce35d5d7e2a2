// The webgpu kernel set: every kernel of kernels.ts as WGSL dispatches through the bridge. decodeBlock is the
// same sequence of kernels as the reference's, on device buffers. It does not validate indices the way the
// native addon does (WebGPU clamps out-of-range reads, so a bad id gives wrong numbers, never a crash);
// the ops check ids, positions and slots before any kernel runs.
import { FrugalError } from "../../common/errors.js";
import type { DecodeBlockArgs, F32, I32, Kernels, KV, U16 } from "../kernels.js";
import type { Gpu } from "./bridge.js";

type G3 = [number, number, number];

/** The native addon's size and index checks, with its messages: a bad call fails before any GPU work. */
function need(kernel: string, name: string, a: { length: number }, want: number): void {
  if (a.length < want)
    throw new FrugalError("SHAPE", `${kernel}: ${name} has ${a.length} elements, the shapes given need ${want}`);
}
function within(kernel: string, name: string, a: Int32Array, limit: number): void {
  a.forEach((v, i) => {
    if (!(v >= 0 && v < limit))
      throw new FrugalError("INDEX", `${kernel}: ${name} holds ${v} at index ${i}, outside [0, ${limit})`);
  });
}
/** n workgroups as a 2-D grid (65,535 per dimension at most): one per row of a row kernel. */
function rows(n: number): G3 {
  const x = Math.min(n, 65535);
  return [Math.max(1, x), Math.max(1, Math.ceil(n / x)), 1];
}
/** n threads, 256 per workgroup */
const lin = (n: number): G3 => rows(Math.ceil(n / 256));

export function webgpuKernelsOn(gpu: Gpu): Kernels {
  const temps = new Map<string, Float32Array>();
  /** A device-side scratch array of at least n floats, kept per purpose (attention's dS, decodeBlock's). */
  const temp = (key: string, n: number): Float32Array => {
    let t = temps.get(key);
    if (!t || t.length < n) {
      t = new Float32Array(Math.max(n, 4));
      gpu.track(t);
      temps.set(key, t);
    }
    return t.subarray(0, n);
  };
  const run = (k: string, arrays: (F32 | I32 | U16)[], params: number[], groups: G3, extra?: number[]) =>
    gpu.run(k, arrays, params, groups, extra);

  const k: Kernels = {
    gemm(ta, tb, M, N, K, alpha, A, offA, lda, sA, B, offB, ldb, sB, beta, C, offC, ldc, sC, batch) {
      if (M * N * batch === 0) return;
      const g: G3 = [Math.ceil(N / 64), Math.ceil(M / 64), batch];
      run("gemm", [A, B, C], [ta, tb, M, N, K, alpha, lda, sA, ldb, sB, beta, ldc, sC], g, [offA, offB, offC]);
    },
    add: (a, b, out) => void (a.length && run("add", [a, b, out], [a.length], lin(a.length))),
    mul: (a, b, out) => void (a.length && run("mul", [a, b, out], [a.length], lin(a.length))),
    axpy: (alpha, x, y) => void (x.length && run("axpy", [x, y], [x.length, alpha], lin(x.length))),
    sumsq(x) {
      if (!x.length) return 0;
      const out = new Float32Array(1);
      run("sumsq", [x, out], [x.length], [1, 1, 1]);
      return out[0]!;
    },
    embeddingFwd(W, ids, out, C) {
      const n = ids.length * C;
      if (n) run("embeddingFwd", [W, ids, out], [n, C], lin(n));
    },
    embeddingBwd(dout, ids, dW, C) {
      if (ids.length && C) run("embeddingBwd", [dout, ids, dW], [C, ids.length], lin(C));
    },
    rmsnormFwd(x, w, out, rstd, R, C, eps) {
      if (R) run("rmsnormFwd", [x, w, out, rstd], [R, C, eps], rows(R));
    },
    rmsnormBwd(dout, x, w, rstd, dx, dw, R, C) {
      if (!R) return;
      run("rmsnormBwdDx", [dout, x, w, rstd, dx], [R, C], rows(R));
      run("rmsnormBwdDw", [dout, x, rstd, dw], [C, R], lin(C));
    },
    rope(x, out, pos, cos, sin, R, H, D, inverse) {
      const n = (R * H * D) / 2;
      if (n) run("rope", [x, out, pos, cos, sin], [n, H, D, inverse], lin(n));
    },
    attnFwd(q, kk, v, out, P, B, T, H, KVH, D, scale) {
      const n = B * H * T;
      if (n) run("attnFwd", [q, kk, v, out, P], [n, T, H, KVH, D, scale], lin(n));
    },
    attnBwd(dout, q, kk, v, P, dq, dk, dv, B, T, H, KVH, D, scale) {
      if (!(B * H * T)) return;
      const S = temp("attnS", B * H * T * T);
      run("attnBwdS", [dout, v, P, S], [B * H * T, T, H, KVH, D, scale], lin(B * H * T));
      run("attnBwdQ", [S, kk, dq], [B * T * H * D, T, H, KVH, D], lin(B * T * H * D));
      run("attnBwdKV", [S, P, q, dout, dk, dv], [B * T * KVH * D, T, H, KVH, D], lin(B * T * KVH * D));
    },
    attnCached(q, kc, vc, out, pos, slot, B, Tn, H, KVH, D, Tmax, scale) {
      if (kc instanceof Uint16Array !== vc instanceof Uint16Array)
        throw new FrugalError("ARG", "attnCached: the K and V caches must be of one type (both float32 or bfloat16)");
      if (D > 256) throw new FrugalError("ARG", `attnCached: webgpu kernels take head dims up to 256, got ${D}`);
      const n = B * Tn * H;
      const name = kc instanceof Uint16Array ? "attnCachedHalf" : "attnCached";
      if (n) run(name, [q, kc, vc, out, pos, slot], [B, Tn, H, KVH, D, Tmax, scale], lin(n));
    },
    decodeBlock: (...a) => decode(a, false),
    decodeBlockHalf: (...a) => decode(a, true),
    linearBf16(x, W, y, N, inF, outF, beta) {
      need("linear_bf16", "W", W, inF * outF);
      if (N * outF) run("linearBf16", [x, W, y], [N * outF, inF, outF, beta], lin(N * outF));
    },
    matmulBf16(dy, W, dx, N, inF, outF, beta) {
      need("matmul_bf16", "W", W, inF * outF);
      if (N * inF) run("matmulBf16", [dy, W, dx], [N * inF, inF, outF, beta], lin(N * inF));
    },
    swigluFwd: (g, u, out) => void (g.length && run("swigluFwd", [g, u, out], [g.length], lin(g.length))),
    swigluBwd(dout, g, u, dg, du) {
      if (!g.length) return;
      if (dg.buffer !== du.buffer) return run("swigluBwd", [dout, g, u, dg, du], [g.length], lin(g.length));
      // swiglu(h, h): one gradient buffer twice, which WebGPU cannot bind writable twice
      const d2 = temp("swigluDu", g.length);
      gpu.zero(d2.fill(0));
      run("swigluBwd", [dout, g, u, dg, d2], [g.length], lin(g.length));
      k.axpy(1, d2, du);
    },
    logsoftmaxGather(logits, targets, logp, lse, N, V) {
      if (N) run("logsoftmaxGather", [logits, targets, logp, lse], [N, V], rows(N));
    },
    logsoftmaxGatherBwd(logits, lse, targets, dlogp, dlogits, N, V) {
      if (N * V) run("logsoftmaxGatherBwd", [logits, lse, targets, dlogp, dlogits], [N * V, V], lin(N * V));
    },
    adamw(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs) {
      if (p.length) run("adamw", [p, g, m, v], [p.length, lr, b1, b2, eps, wd, bc1, bc2, gs], lin(p.length));
    },
  };

  /** decodeBlock as its kernels (the reference's order), with the projections in float32 or bfloat16. */
  function decode(a: DecodeBlockArgs<F32> | DecodeBlockArgs<U16>, half: boolean): void {
    const [x, ln1, wq, wk, wv, bq, bk, bv, wo, ln2, wg, wu, wd, cos, sin, kc, vc, pos, slot] = a;
    const [N, C, H, KVH, D, F, Tmax, eps] = a.slice(19) as number[];
    const qd = H! * D!,
      kd = KVH! * D!;
    const sizes: [string, { length: number }, number][] = [
      ["x", x, N! * C!],
      ["wq", wq, qd * C!],
      ["wk", wk, kd * C!],
      ["wv", wv, kd * C!],
      ["wo", wo, C! * qd],
      ["wg", wg, F! * C!],
      ["wu", wu, F! * C!],
      ["wd", wd, C! * F!],
    ];
    for (const [name, arr, want] of sizes) need("decode_block", name, arr, want);
    within("decode_block", "pos", pos, Tmax!);
    within("decode_block", "slot", slot, kc.length / (Tmax! * kd));
    const h = temp("h", N! * C!),
      rstd = temp("rstd", N!);
    const proj = (W: F32 | U16, bias: F32, n: number, K: number, inp: F32, y: F32, beta: number) => {
      if (half) k.linearBf16(inp, W as U16, y, N!, K, n, beta);
      else k.gemm(0, 1, N!, n, K, 1, inp, 0, K, 0, W as F32, 0, K, 0, beta, y, 0, n, 0, 1);
      if (bias.length)
        k.gemm(0, 0, N!, n, 1, 1, new Float32Array(N!).fill(1), 0, 1, 0, bias, 0, n, 0, 1, y, 0, n, 0, 1);
    };
    k.rmsnormFwd(x, ln1, h, rstd, N!, C!, eps!);
    const q = temp("q", N! * qd),
      kk = temp("k", N! * kd),
      v = temp("v", N! * kd);
    proj(wq, bq, qd, C!, h, q, 0);
    proj(wk, bk, kd, C!, h, kk, 0);
    proj(wv, bv, kd, C!, h, v, 0);
    const qr = temp("qr", N! * qd),
      kr = temp("kr", N! * kd),
      att = temp("att", N! * qd);
    k.rope(q, qr, pos, cos, sin, N!, H!, D!, 0);
    k.rope(kk, kr, pos, cos, sin, N!, KVH!, D!, 0);
    const write = kc instanceof Uint16Array ? "cacheWriteHalf" : "cacheWrite";
    run(write, [kr, kc, pos, slot], [N! * kd, kd, Tmax!], lin(N! * kd));
    run(write, [v, vc, pos, slot], [N! * kd, kd, Tmax!], lin(N! * kd));
    k.attnCached(qr, kc as KV, vc as KV, att, pos, slot, N!, 1, H!, KVH!, D!, Tmax!, 1 / Math.sqrt(D!));
    proj(wo, new Float32Array(0), C!, qd, att, x, 1);
    k.rmsnormFwd(x, ln2, h, rstd, N!, C!, eps!);
    const g = temp("g", N! * F!),
      u = temp("u", N! * F!),
      s = temp("s", N! * F!);
    proj(wg, new Float32Array(0), F!, C!, h, g, 0);
    proj(wu, new Float32Array(0), F!, C!, h, u, 0);
    k.swigluFwd(g, u, s);
    proj(wd, new Float32Array(0), C!, F!, s, x, 1);
  }
  return k;
}
