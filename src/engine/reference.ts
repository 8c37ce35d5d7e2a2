// Plain-TypeScript reference kernels: obviously correct loops, used by tests, gradient checks and as the
// fallback when the native addon cannot load. Deliberately unoptimised: clarity over speed, float64
// accumulators where a sum is long. Same contract as kernels.ts (backward kernels add into grads).
import type { F32, I32, Kernels, KV, U16 } from "./kernels.js";
import { bf16Value, storeBf16, widenBf16 } from "./bf16.js";

function gemm(
  ta: number,
  tb: number,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: F32,
  offA: number,
  lda: number,
  sA: number,
  B: F32,
  offB: number,
  ldb: number,
  sB: number,
  beta: number,
  C: F32,
  offC: number,
  ldc: number,
  sC: number,
  batch: number,
): void {
  for (let b = 0; b < batch; b++) {
    const a0 = offA + b * sA,
      b0 = offB + b * sB,
      c0 = offC + b * sC;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = ta ? A[a0 + k * lda + i]! : A[a0 + i * lda + k]!;
          const bv = tb ? B[b0 + j * ldb + k]! : B[b0 + k * ldb + j]!;
          s += av * bv;
        }
        const ci = c0 + i * ldc + j;
        C[ci] = alpha * s + (beta === 0 ? 0 : beta * C[ci]!);
      }
    }
  }
}

function rmsnormFwd(x: F32, w: F32, out: F32, rstd: F32, rows: number, C: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[r * C + c]! ** 2;
    const s = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = s;
    for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c]! * s * w[c]!;
  }
}

function rmsnormBwd(dout: F32, x: F32, w: F32, rstd: F32, dx: F32, dw: F32, rows: number, C: number): void {
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[r * C + c]! * w[c]! * x[r * C + c]!;
    const k = (dot * s * s * s) / C;
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      dx[i]! += dout[i]! * w[c]! * s - x[i]! * k;
      dw[c]! += dout[i]! * x[i]! * s;
    }
  }
}

function rope(
  x: F32,
  out: F32,
  pos: I32,
  cos: F32,
  sin: F32,
  rows: number,
  H: number,
  D: number,
  inverse: number,
): void {
  const half = D / 2;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) {
      const base = (r * H + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[pos[r]! * half + i]!,
          s = (inverse ? -1 : 1) * sin[pos[r]! * half + i]!;
        const a = x[base + i]!,
          b = x[base + i + half]!;
        const o1 = a * c - b * s,
          o2 = b * c + a * s;
        if (inverse) {
          out[base + i]! += o1;
          out[base + i + half]! += o2;
        } else {
          out[base + i] = o1;
          out[base + i + half] = o2;
        }
      }
    }
  }
}

function attnFwd(
  q: F32,
  k: F32,
  v: F32,
  out: F32,
  P: F32,
  B: number,
  T: number,
  H: number,
  KVH: number,
  D: number,
  scale: number,
): void {
  const rep = H / KVH;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / rep),
        p0 = (b * H + h) * T * T;
      for (let i = 0; i < T; i++) {
        let mx = -Infinity;
        for (let j = 0; j < T; j++) {
          if (j > i) {
            P[p0 + i * T + j] = 0;
            continue;
          }
          let s = 0;
          for (let d = 0; d < D; d++) s += q[((b * T + i) * H + h) * D + d]! * k[((b * T + j) * KVH + kh) * D + d]!;
          P[p0 + i * T + j] = s * scale;
          mx = Math.max(mx, s * scale);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          const e = Math.exp(P[p0 + i * T + j]! - mx);
          P[p0 + i * T + j] = e;
          sum += e;
        }
        for (let j = 0; j <= i; j++) P[p0 + i * T + j]! /= sum;
        for (let d = 0; d < D; d++) {
          let o = 0;
          for (let j = 0; j <= i; j++) o += P[p0 + i * T + j]! * v[((b * T + j) * KVH + kh) * D + d]!;
          out[((b * T + i) * H + h) * D + d] = o;
        }
      }
    }
}

function attnBwd(
  dout: F32,
  q: F32,
  k: F32,
  v: F32,
  P: F32,
  dq: F32,
  dk: F32,
  dv: F32,
  B: number,
  T: number,
  H: number,
  KVH: number,
  D: number,
  scale: number,
): void {
  const rep = H / KVH;
  const dP = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / rep),
        p0 = (b * H + h) * T * T;
      const qi = (t: number, d: number) => ((b * T + t) * H + h) * D + d;
      const ki = (t: number, d: number) => ((b * T + t) * KVH + kh) * D + d;
      for (let i = 0; i < T; i++) {
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += dout[qi(i, d)]! * v[ki(j, d)]!;
          dP[j] = s;
          dot += s * P[p0 + i * T + j]!;
        }
        for (let j = 0; j <= i; j++) {
          const p = P[p0 + i * T + j]!;
          const dS = p * (dP[j]! - dot) * scale;
          for (let d = 0; d < D; d++) {
            dv[ki(j, d)]! += p * dout[qi(i, d)]!;
            dq[qi(i, d)]! += dS * k[ki(j, d)]!;
            dk[ki(j, d)]! += dS * q[qi(i, d)]!;
          }
        }
      }
    }
}

function attnCached(
  q: F32,
  kc: KV,
  vc: KV,
  out: F32,
  pos: I32,
  slot: I32,
  B: number,
  Tn: number,
  H: number,
  KVH: number,
  D: number,
  Tmax: number,
  scale: number,
): void {
  const rep = H / KVH,
    half = kc instanceof Uint16Array,
    at = (c: KV, i: number) => (half ? bf16Value(c[i]!) : c[i]!);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < Tn; t++)
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / rep),
          n = pos[b]! + t + 1,
          q0 = ((b * Tn + t) * H + h) * D;
        const s = new Float64Array(n);
        let mx = -Infinity;
        for (let j = 0; j < n; j++) {
          let d = 0;
          for (let c = 0; c < D; c++) d += q[q0 + c]! * at(kc, ((slot[b]! * Tmax + j) * KVH + kh) * D + c);
          s[j] = d * scale;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) {
          s[j] = Math.exp(s[j]! - mx);
          sum += s[j]!;
        }
        for (let c = 0; c < D; c++) {
          let o = 0;
          for (let j = 0; j < n; j++) o += (s[j]! / sum) * at(vc, ((slot[b]! * Tmax + j) * KVH + kh) * D + c);
          out[q0 + c] = o;
        }
      }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const swigluFwd = (g: F32, u: F32, out: F32) => {
  for (let i = 0; i < g.length; i++) out[i] = g[i]! * sigmoid(g[i]!) * u[i]!;
};

function logsoftmaxGather(logits: F32, targets: I32, logp: F32, lse: F32, N: number, V: number): void {
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[n * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[n * V + v]! - mx);
    lse[n] = mx + Math.log(sum);
    logp[n] = logits[n * V + targets[n]!]! - lse[n]!;
  }
}

function logsoftmaxGatherBwd(
  logits: F32,
  lse: F32,
  targets: I32,
  dlogp: F32,
  dlogits: F32,
  N: number,
  V: number,
): void {
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) dlogits[n * V + v]! += -dlogp[n]! * Math.exp(logits[n * V + v]! - lse[n]!);
    dlogits[n * V + targets[n]!]! += dlogp[n]!;
  }
}

function linearBf16(x: F32, W: U16, y: F32, N: number, inF: number, outF: number, beta: number): void {
  gemm(0, 1, N, outF, inF, 1, x, 0, inF, 0, widenBf16(W), 0, inF, 0, beta, y, 0, outF, 0, 1);
}

function matmulBf16(dy: F32, W: U16, dx: F32, N: number, inF: number, outF: number, beta: number): void {
  gemm(0, 0, N, inF, outF, 1, dy, 0, outF, 0, widenBf16(W), 0, inF, 0, beta, dx, 0, inF, 0, 1);
}

/** The block as the sequence of the kernels above (the op-by-op path, with the residual adds fused). */
const decodeBlock: Kernels["decodeBlock"] = (
  x,
  ln1,
  wq,
  wk,
  wv,
  bq,
  bk,
  bv,
  wo,
  ln2,
  wg,
  wu,
  wd,
  cos,
  sin,
  kc,
  vc,
  pos,
  slot,
  N,
  C,
  H,
  KVH,
  D,
  F,
  Tmax,
  eps,
) => {
  const qd = H * D,
    kd = KVH * D,
    rstd = new Float32Array(N),
    h = new Float32Array(N * C);
  const proj = (W: F32, bias: F32, n: number, K: number, inp: F32) => {
    const y = new Float32Array(N * n);
    gemm(0, 1, N, n, K, 1, inp, 0, K, 0, W, 0, K, 0, 0, y, 0, n, 0, 1);
    if (bias.length) for (let r = 0; r < N; r++) for (let i = 0; i < n; i++) y[r * n + i]! += bias[i]!;
    return y;
  };
  rmsnormFwd(x, ln1, h, rstd, N, C, eps);
  const q = proj(wq, bq, qd, C, h),
    k = proj(wk, bk, kd, C, h),
    v = proj(wv, bv, kd, C, h);
  const qr = new Float32Array(N * qd),
    kr = new Float32Array(N * kd),
    att = new Float32Array(N * qd);
  rope(q, qr, pos, cos, sin, N, H, D, 0);
  rope(k, kr, pos, cos, sin, N, KVH, D, 0);
  for (let b = 0; b < N; b++) {
    const dst = (slot[b]! * Tmax + pos[b]!) * kd;
    if (kc instanceof Uint16Array) {
      storeBf16(kc, kr.subarray(b * kd, (b + 1) * kd), dst);
      storeBf16(vc as U16, v.subarray(b * kd, (b + 1) * kd), dst);
    } else {
      kc.set(kr.subarray(b * kd, (b + 1) * kd), dst);
      (vc as F32).set(v.subarray(b * kd, (b + 1) * kd), dst);
    }
  }
  attnCached(qr, kc, vc, att, pos, slot, N, 1, H, KVH, D, Tmax, 1 / Math.sqrt(D));
  gemm(0, 1, N, C, qd, 1, att, 0, qd, 0, wo, 0, qd, 0, 1, x, 0, C, 0, 1);
  rmsnormFwd(x, ln2, h, rstd, N, C, eps);
  const g = proj(wg, new Float32Array(0), F, C, h),
    u = proj(wu, new Float32Array(0), F, C, h);
  swigluFwd(g, u, g);
  gemm(0, 1, N, C, F, 1, g, 0, F, 0, wd, 0, F, 0, 1, x, 0, C, 0, 1);
};

export const referenceKernels: Kernels = {
  gemm,
  add: (a, b, out) => {
    for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
  },
  mul: (a, b, out) => {
    for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i]!;
  },
  axpy: (alpha, x, y) => {
    for (let i = 0; i < x.length; i++) y[i]! += alpha * x[i]!;
  },
  sumsq: (x) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
    return s;
  },
  embeddingFwd: (W, ids, out, C) => {
    for (let i = 0; i < ids.length; i++) out.set(W.subarray(ids[i]! * C, ids[i]! * C + C), i * C);
  },
  embeddingBwd: (dout, ids, dW, C) => {
    for (let i = 0; i < ids.length; i++) for (let c = 0; c < C; c++) dW[ids[i]! * C + c]! += dout[i * C + c]!;
  },
  rmsnormFwd,
  rmsnormBwd,
  rope,
  attnFwd,
  attnBwd,
  attnCached,
  decodeBlock,
  decodeBlockHalf: (x, ln1, wq, wk, wv, bq, bk, bv, wo, ln2, wg, wu, wd, ...rest) =>
    decodeBlock(
      x,
      ln1,
      widenBf16(wq),
      widenBf16(wk),
      widenBf16(wv),
      bq,
      bk,
      bv,
      widenBf16(wo),
      ln2,
      widenBf16(wg),
      widenBf16(wu),
      widenBf16(wd),
      ...rest,
    ),
  linearBf16,
  matmulBf16,
  swigluFwd,
  swigluBwd: (dout, g, u, dg, du) => {
    for (let i = 0; i < g.length; i++) {
      const s = sigmoid(g[i]!);
      dg[i]! += dout[i]! * u[i]! * s * (1 + g[i]! * (1 - s));
      du[i]! += dout[i]! * g[i]! * s;
    }
  },
  logsoftmaxGather,
  logsoftmaxGatherBwd,
  adamw: (p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs) => {
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * gs;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      p[i]! -= lr * (m[i]! / bc1 / (Math.sqrt(v[i]! / bc2) + eps) + wd * p[i]!);
    }
  },
};
