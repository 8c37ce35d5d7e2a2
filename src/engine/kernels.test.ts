// Native and webgpu kernels against the TS reference, on every kernel, every gemm transpose and the shapes the
// model uses; plus bad arguments to the native side, which must throw (never crash). Skips a set that is absent
// (no addon, no WebGPU adapter), unless FRUGAL_REQUIRE_WEBGPU=1 (CI) makes a missing adapter a failure.
import { test as nodeTest } from "node:test";
import assert from "node:assert/strict";
import { nativeKernels, webgpuKernels } from "./backend.js";
import { referenceKernels as R } from "./reference.js";
import { randn, Rng } from "../common/rng.js";
import type { Kernels } from "./kernels.js";
import { toBf16Array, widenBf16 } from "./bf16.js";

const rng = new Rng(7);
const rnd = (n: number) => randn(rng, n);
const dense = new Int32Array(0); // decodeBlock's groups: none

export function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return worst;
}
function close(a: Float32Array, b: Float32Array, tol = 2e-5, what = ""): void {
  const d = maxRelDiff(a, b);
  assert.ok(d <= tol, `${what}: max diff ${d} exceeds ${tol}`);
}
/**
 * Largest difference over the reference's largest magnitude (+1): for outputs that are sums of terms ~1000
 * (a whole block on unit-variance weights), where an element that cancels to ~0.1 carries float32 rounding
 * of the terms, not of itself (measured on AVX2: 1.6e-4 elementwise, 8e-7 of the scale).
 */
function closeToScale(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++)
    ((diff = Math.max(diff, Math.abs(a[i]! - b[i]!))), (scale = Math.max(scale, Math.abs(b[i]!))));
  assert.ok(diff <= tol * (1 + scale), `${what}: max diff ${diff} exceeds ${tol} of the largest value ${scale}`);
}

type Opts = { skip: string | false };

/**
 * Causal attention at a length that spans several query blocks with a partial last one (T 150): the same
 * output and gradients as the reference, while P above the diagonal starts as NaN and is never read.
 */
function attentionAcrossBlocks(N: Kernels): void {
  const [B, T, H, KVH, D] = [2, 150, 4, 2, 8],
    sc = 1 / Math.sqrt(D);
  const q = rnd(B * T * H * D),
    k = rnd(B * T * KVH * D),
    v = rnd(B * T * KVH * D),
    dout = rnd(q.length);
  const a1 = new Float32Array(q.length),
    a2 = a1.slice(),
    P1 = new Float32Array(B * H * T * T),
    P2 = new Float32Array(P1.length).fill(NaN);
  R.attnFwd(q, k, v, a1, P1, B, T, H, KVH, D, sc);
  N.attnFwd(q, k, v, a2, P2, B, T, H, KVH, D, sc);
  close(a2, a1, 1e-5, "attnFwd out, T 150");
  const lower = (P: Float32Array) => P.filter((_, n) => n % T <= Math.floor(n / T) % T);
  close(lower(P2), lower(P1), 1e-5, "attnFwd P on and below the diagonal, T 150");
  const zeros = () => [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)] as const;
  const [dq1, dk1, dv1] = zeros(),
    [dq2, dk2, dv2] = zeros();
  R.attnBwd(dout, q, k, v, P1, dq1, dk1, dv1, B, T, H, KVH, D, sc);
  N.attnBwd(dout, q, k, v, P2, dq2, dk2, dv2, B, T, H, KVH, D, sc);
  close(dq2, dq1, 1e-4, "attnBwd dq, T 150");
  close(dk2, dk1, 1e-4, "attnBwd dk, T 150");
  close(dv2, dv1, 1e-4, "attnBwd dv, T 150");
  if (!N.attnFwdStats || !N.attnBwdStats) return;
  // the form that keeps each row's max and 1/Σ exp instead of P: the same output, and the same gradients bit for bit
  // (it rebuilds P with the forward's own arithmetic), added into non-zero gradients
  const a3 = new Float32Array(q.length),
    stats = new Float32Array(B * H * T * 2).fill(NaN);
  N.attnFwdStats(q, k, v, a3, stats, B, T, H, KVH, D, sc);
  assert.deepEqual(a3, a2, "attnFwdStats out, T 150: attnFwd's bits");
  assert.ok(stats.every(Number.isFinite), "attnFwdStats writes every row's max and 1/Σ exp");
  const base = [rnd(q.length), rnd(k.length), rnd(v.length)] as const,
    [dq3, dk3, dv3] = base.map((g) => g.slice()),
    [dq4, dk4, dv4] = base.map((g) => g.slice());
  N.attnBwdStats(dout, q, k, v, stats, dq3!, dk3!, dv3!, B, T, H, KVH, D, sc);
  N.attnBwd(dout, q, k, v, P2, dq4!, dk4!, dv4!, B, T, H, KVH, D, sc);
  assert.deepEqual([dq3, dk3, dv3], [dq4, dk4, dv4], "attnBwdStats, T 150: attnBwd's bits");
  const added = (g: Float32Array, b0: Float32Array) => g.map((x, i) => x - b0[i]!);
  close(added(dq3!, base[0]), dq1, 1e-4, "attnBwdStats dq, T 150");
  close(added(dv3!, base[2]), dv1, 1e-4, "attnBwdStats dv, T 150");
}
/** Every test below, for one kernel set N compared with the reference R. */
function suite(label: string, N: Kernels, skip: string | false): void {
  const test = (name: string, opts: Opts, fn: () => void) => nodeTest(`${label}: ${name}`, opts, fn);
  test("gemm: all transposes, batched, offsets, alpha/beta, model shapes", { skip }, () => {
    const shapes: [number, number, number, number][] = [
      [3, 5, 7, 1],
      [64, 256, 256, 1],
      [256, 768, 256, 1],
      [2048, 64, 256, 1],
      [17, 33, 9, 4],
      [128, 128, 64, 3], // a batch the threads cannot share evenly: each matmul split by rows
      [16, 200, 64, 3], // … by columns
      [1, 256, 768, 1],
    ];
    for (const [M, Nn, Kk, batch] of shapes) {
      for (const ta of [0, 1])
        for (const tb of [0, 1]) {
          const lda = (ta ? M : Kk) + 1,
            ldb = (tb ? Kk : Nn) + 2,
            ldc = Nn + 3;
          const rowsA = ta ? Kk : M,
            rowsB = tb ? Nn : Kk;
          const sA = rowsA * lda,
            sB = rowsB * ldb,
            sC = M * ldc;
          const A = rnd(5 + sA * batch),
            B = rnd(3 + sB * batch),
            C0 = rnd(2 + sC * batch);
          const c1 = C0.slice(),
            c2 = C0.slice();
          R.gemm(ta, tb, M, Nn, Kk, 0.5, A, 5, lda, sA, B, 3, ldb, sB, 0.25, c1, 2, ldc, sC, batch);
          N.gemm(ta, tb, M, Nn, Kk, 0.5, A, 5, lda, sA, B, 3, ldb, sB, 0.25, c2, 2, ldc, sC, batch);
          close(c2, c1, 1e-4, `gemm ${M}x${Nn}x${Kk} ta=${ta} tb=${tb} batch=${batch}`);
        }
    }
  });

  test("elementwise, embedding, rmsnorm, swiglu, adamw agree", { skip }, () => {
    const n = 40000,
      a = rnd(n),
      b = rnd(n);
    for (const op of ["add", "mul"] as const) {
      const o1 = new Float32Array(n),
        o2 = new Float32Array(n);
      R[op](a, b, o1);
      N[op](a, b, o2);
      close(o2, o1, 1e-6, op);
    }
    const y1 = b.slice(),
      y2 = b.slice();
    R.axpy(0.3, a, y1);
    N.axpy(0.3, a, y2);
    close(y2, y1, 1e-6, "axpy");
    assert.ok(Math.abs(N.sumsq(a) - R.sumsq(a)) / R.sumsq(a) < 1e-6);

    const V = 50,
      C = 32,
      ids = Int32Array.from({ length: 70 }, () => rng.int(0, V - 1)),
      W = rnd(V * C);
    const e1 = new Float32Array(70 * C),
      e2 = new Float32Array(70 * C);
    R.embeddingFwd(W, ids, e1, C);
    N.embeddingFwd(W, ids, e2, C);
    close(e2, e1, 0, "embeddingFwd");
    const dW1 = rnd(V * C),
      dW2 = dW1.slice(),
      dout = rnd(70 * C);
    R.embeddingBwd(dout, ids, dW1, C);
    N.embeddingBwd(dout, ids, dW2, C);
    close(dW2, dW1, 1e-6, "embeddingBwd");

    const rows = 300,
      Cn = 256,
      x = rnd(rows * Cn),
      w = rnd(Cn);
    const o1 = new Float32Array(rows * Cn),
      o2 = o1.slice(),
      r1 = new Float32Array(rows),
      r2 = r1.slice();
    R.rmsnormFwd(x, w, o1, r1, rows, Cn, 1e-5);
    N.rmsnormFwd(x, w, o2, r2, rows, Cn, 1e-5);
    close(o2, o1, 1e-5, "rmsnormFwd");
    const g = rnd(rows * Cn),
      dx1 = rnd(rows * Cn),
      dx2 = dx1.slice(),
      dw1 = rnd(Cn),
      dw2 = dw1.slice();
    R.rmsnormBwd(g, x, w, r1, dx1, dw1, rows, Cn);
    N.rmsnormBwd(g, x, w, r1, dx2, dw2, rows, Cn);
    close(dx2, dx1, 1e-5, "rmsnormBwd dx");
    close(dw2, dw1, 1e-4, "rmsnormBwd dw");

    const s1 = new Float32Array(n),
      s2 = s1.slice();
    R.swigluFwd(a, b, s1);
    N.swigluFwd(a, b, s2);
    close(s2, s1, 1e-5, "swigluFwd");
    const dg1 = rnd(n),
      dg2 = dg1.slice(),
      du1 = rnd(n),
      du2 = du1.slice();
    R.swigluBwd(y1, a, b, dg1, du1);
    N.swigluBwd(y1, a, b, dg2, du2);
    close(dg2, dg1, 1e-5, "swigluBwd dg");
    close(du2, du1, 1e-5, "swigluBwd du");

    const p1 = rnd(n),
      p2 = p1.slice(),
      m1 = rnd(n),
      m2 = m1.slice(),
      v1 = rnd(n).map(Math.abs),
      v2 = v1.slice();
    R.adamw(p1, a, m1, v1, 1e-3, 0.9, 0.95, 1e-8, 0.1, 0.19, 0.0975, 0.5);
    N.adamw(p2, a, m2, v2, 1e-3, 0.9, 0.95, 1e-8, 0.1, 0.19, 0.0975, 0.5);
    close(p2, p1, 1e-5, "adamw p");
    close(m2, m1, 1e-6, "adamw m");
    close(v2, v1, 1e-6, "adamw v");
  });

  test("rope, attention (fwd/bwd/cached), log-softmax agree", { skip }, () => {
    const B = 3,
      T = 20,
      H = 4,
      KVH = 2,
      D = 16,
      maxPos = 64,
      half = D / 2;
    const cos = new Float32Array(maxPos * half),
      sin = new Float32Array(maxPos * half);
    for (let i = 0; i < cos.length; i++) {
      cos[i] = Math.cos(i * 0.37);
      sin[i] = Math.sin(i * 0.37);
    }
    const rows = B * T,
      x = rnd(rows * H * D),
      pos = Int32Array.from({ length: rows }, (_, i) => (i * 7) % maxPos);
    const o1 = new Float32Array(x.length),
      o2 = o1.slice();
    R.rope(x, o1, pos, cos, sin, rows, H, D, 0);
    N.rope(x, o2, pos, cos, sin, rows, H, D, 0);
    close(o2, o1, 1e-6, "rope");
    const i1 = rnd(x.length),
      i2 = i1.slice();
    R.rope(x, i1, pos, cos, sin, rows, H, D, 1);
    N.rope(x, i2, pos, cos, sin, rows, H, D, 1);
    close(i2, i1, 1e-6, "rope inverse");

    const q = rnd(B * T * H * D),
      k = rnd(B * T * KVH * D),
      v = rnd(B * T * KVH * D),
      sc = 1 / Math.sqrt(D);
    const a1 = new Float32Array(q.length),
      a2 = a1.slice(),
      P1 = new Float32Array(B * H * T * T),
      P2 = P1.slice();
    R.attnFwd(q, k, v, a1, P1, B, T, H, KVH, D, sc);
    N.attnFwd(q, k, v, a2, P2, B, T, H, KVH, D, sc);
    close(a2, a1, 1e-5, "attnFwd out");
    close(P2, P1, 1e-5, "attnFwd P");
    const dout = rnd(q.length),
      grads = () => [rnd(q.length), rnd(k.length), rnd(v.length)] as const;
    const [dq1, dk1, dv1] = grads(),
      dq2 = dq1.slice(),
      dk2 = dk1.slice(),
      dv2 = dv1.slice();
    R.attnBwd(dout, q, k, v, P1, dq1, dk1, dv1, B, T, H, KVH, D, sc);
    N.attnBwd(dout, q, k, v, P1, dq2, dk2, dv2, B, T, H, KVH, D, sc);
    close(dq2, dq1, 1e-4, "attnBwd dq");
    close(dk2, dk1, 1e-4, "attnBwd dk");
    close(dv2, dv1, 1e-4, "attnBwd dv");

    attentionAcrossBlocks(N);

    // the cached form over a full prefix equals the causal attention
    const posC = new Int32Array(B),
      slots = Int32Array.from({ length: B }, (_, b) => b);
    const c1 = new Float32Array(q.length),
      c2 = c1.slice();
    R.attnCached(q, k, v, c1, posC, slots, B, T, H, KVH, D, T, sc);
    N.attnCached(q, k, v, c2, posC, slots, B, T, H, KVH, D, T, sc);
    close(c1, a1, 1e-5, "attnCached (reference) vs attnFwd");
    close(c2, c1, 1e-5, "attnCached");
    // a permuted slot map reads the permuted sequences
    const perm = Int32Array.of(2, 0, 1),
      qp = new Float32Array(q.length),
      c3 = c1.slice();
    for (let b = 0; b < B; b++) qp.set(q.subarray(perm[b]! * T * H * D, (perm[b]! + 1) * T * H * D), b * T * H * D);
    N.attnCached(qp, k, v, c3, posC, perm, B, T, H, KVH, D, T, sc);
    for (let b = 0; b < B; b++)
      close(
        c3.subarray(b * T * H * D, (b + 1) * T * H * D),
        c1.subarray(perm[b]! * T * H * D, (perm[b]! + 1) * T * H * D),
        1e-6,
        "attnCached slots",
      );

    const Nn = 100,
      V = 64,
      logits = rnd(Nn * V).map((z) => z * 10),
      tg = Int32Array.from({ length: Nn }, () => rng.int(0, V - 1));
    const l1 = new Float32Array(Nn),
      l2 = l1.slice(),
      s1 = l1.slice(),
      s2 = l1.slice();
    R.logsoftmaxGather(logits, tg, l1, s1, Nn, V);
    N.logsoftmaxGather(logits, tg, l2, s2, Nn, V);
    close(l2, l1, 1e-5, "logsoftmaxGather");
    const dl = rnd(Nn),
      d1 = rnd(Nn * V),
      d2 = d1.slice();
    R.logsoftmaxGatherBwd(logits, s1, tg, dl, d1, Nn, V);
    N.logsoftmaxGatherBwd(logits, s1, tg, dl, d2, Nn, V);
    close(d2, d1, 1e-5, "logsoftmaxGatherBwd");
  });

  test(
    "native side rejects bad arguments with errors that name the kernel",
    { skip: label === "native" ? skip : "the native addon's own argument checks" },
    () => {
      const f = (n: number) => new Float32Array(n);
      assert.throws(
        () => N.gemm(0, 0, 4, 4, 4, 1, f(15), 0, 4, 0, f(16), 0, 4, 0, 0, f(16), 0, 4, 0, 1),
        /gemm: A has 15 elements/,
      );
      assert.throws(
        () => N.gemm(0, 0, 4, 4, 4, 1, f(16), 0, 4, 0, f(16), 0, 4, 0, 0, f(16), 0, 4, 16, 2),
        /gemm: C has 16 elements, the shapes given need 32/,
      );
      assert.throws(
        () => (N.gemm as any)(0, 0, 4, 4, 4, 1, [1, 2], 0, 4, 0, f(16), 0, 4, 0, 0, f(16), 0, 4, 0, 1),
        /must be a Float32Array|typed array/,
      );
      assert.throws(() => N.embeddingFwd(f(10), Int32Array.of(0, 5), f(4), 2), /ids holds 5 at index 1/);
      assert.throws(() => N.logsoftmaxGather(f(8), Int32Array.of(0, -1), f(2), f(2), 2, 4), /targets holds -1/);
      assert.throws(
        () => N.attnFwd(f(8), f(8), f(8), f(8), f(4), 1, 2, 3, 2, 1, 1),
        /H=3 heads must be a multiple of KVH=2/,
      );
      assert.throws(
        () => N.attnCached(f(16), f(16), f(16), f(16), Int32Array.of(4), Int32Array.of(0), 1, 1, 1, 1, 4, 4, 1),
        /past the cache length/,
      );
      assert.throws(
        () => N.attnCached(f(16), f(16), f(16), f(16), Int32Array.of(0), Int32Array.of(1), 1, 1, 1, 1, 4, 4, 1),
        /slot holds 1 at index 0, outside \[0, 1\)/,
      );
      assert.throws(() => N.rope(f(8), f(8), Int32Array.of(100), f(8), f(8), 1, 1, 8, 0), /pos holds 100/);
      // B 1, T 2, H 2, KVH 1, D 2: stats needs B·H·T·2 = 8 floats
      assert.throws(
        () => N.attnFwdStats!(f(8), f(4), f(4), f(8), f(7), 1, 2, 2, 1, 2, 1),
        /attn_fwd_stats: stats has 7 elements/,
      );
      assert.throws(
        () => N.attnBwdStats!(f(8), f(8), f(4), f(4), f(8), f(7), f(4), f(4), 1, 2, 2, 1, 2, 1),
        /attn_bwd_stats: dq has 7 elements, the shapes given need 8/,
      );
    },
  );

  /** The decoder block the decodeBlock tests use: GQA (4 query heads on 2 key/value heads), 5 cache slots of 20. */
  const BLOCK = { C: 48, H: 4, KVH: 2, D: 12, F: 80, Tmax: 20, slots: 5, qd: 48, kd: 24 };

  test(
    "decodeBlock: native and reference agree (GQA, with and without biases, scattered slots and positions)",
    { skip },
    () => {
      const { C, H, KVH, D, F, Tmax, slots, qd, kd } = BLOCK;
      const cos = rnd((Tmax * D) / 2),
        sin = rnd((Tmax * D) / 2);
      const pos = Int32Array.of(0, 7, 19),
        slot = Int32Array.of(4, 0, 2),
        Nr = 3;
      for (const biased of [false, true]) {
        const w = [
          rnd(C),
          rnd(qd * C),
          rnd(kd * C),
          rnd(kd * C),
          biased ? rnd(qd) : new Float32Array(0),
          biased ? rnd(kd) : new Float32Array(0),
          biased ? rnd(kd) : new Float32Array(0),
          rnd(C * qd),
          rnd(C),
          rnd(F * C),
          rnd(F * C),
          rnd(C * F),
        ] as const;
        const x = rnd(Nr * C),
          kc = rnd(slots * Tmax * kd),
          vc = rnd(slots * Tmax * kd);
        const [x1, x2, k1, k2, v1, v2] = [x.slice(), x.slice(), kc.slice(), kc.slice(), vc.slice(), vc.slice()];
        R.decodeBlock(x1, ...w, cos, sin, k1, v1, pos, slot, Nr, C, H, KVH, D, F, Tmax, 1e-5, dense);
        N.decodeBlock(x2, ...w, cos, sin, k2, v2, pos, slot, Nr, C, H, KVH, D, F, Tmax, 1e-5, dense);
        closeToScale(x2, x1, 1e-5, `decodeBlock x (biases ${biased})`);
        close(k2, k1, 1e-5, "decodeBlock key cache");
        close(v2, v1, 1e-5, "decodeBlock value cache");
        assert.ok(maxRelDiff(x1, x) > 1e-2, "the block changed x");
        assert.ok(maxRelDiff(k1, kc) > 1e-2 && k1[0] === kc[0], "new keys written at (slot, pos) only");
      }
      const f = (n: number) => new Float32Array(n),
        e = f(0);
      const args = (wq: number, p: number, s: number) =>
        [
          f(C),
          f(C),
          f(wq),
          f(kd * C),
          f(kd * C),
          e,
          e,
          e,
          f(C * qd),
          f(C),
          f(F * C),
          f(F * C),
          f(C * F),
          cos,
          sin,
          f(slots * Tmax * kd),
          f(slots * Tmax * kd),
          Int32Array.of(p),
          Int32Array.of(s),
          1,
          C,
          H,
          KVH,
          D,
          F,
          Tmax,
          1e-5,
          dense,
        ] as const;
      assert.throws(
        () => N.decodeBlock(...args(qd * C - 1, 0, 0)),
        /decode_block: wq has 2303 elements, the shapes given need 2304/,
      );
      assert.throws(() => N.decodeBlock(...args(qd * C, Tmax, 0)), /pos holds 20/);
      assert.throws(() => N.decodeBlock(...args(qd * C, 0, slots)), /slot holds 5 at index 0, outside \[0, 5\)/);
    },
  );

  test(
    "decodeBlock in groups: a block-diagonal block as the dense reference computes it; bad groups refused",
    { skip },
    () => {
      // two members of 24 dims, 2 query heads on 1 key/value head and 40 MLP units; zero off the diagonal blocks
      const { C, H, KVH, D, F, Tmax, slots, qd, kd } = BLOCK,
        groups = Int32Array.of(2, 24, 2, 1, 40);
      const diag = (rows: number, cols: number) => {
        const w = rnd(rows * cols);
        w.forEach((_, i) => {
          if (Math.floor(Math.floor(i / cols) / (rows / 2)) !== Math.floor((i % cols) / (cols / 2))) w[i] = 0;
        });
        return w;
      };
      const w = [
          rnd(C),
          diag(qd, C),
          diag(kd, C),
          diag(kd, C),
          rnd(qd),
          rnd(kd),
          rnd(kd),
          diag(C, qd),
          rnd(C),
        ] as const,
        mlp = [diag(F, C), diag(F, C), diag(C, F)] as const;
      const cos = rnd((Tmax * D) / 2),
        sin = rnd((Tmax * D) / 2),
        pos = Int32Array.of(0, 7, 19, 3),
        slot = Int32Array.of(4, 0, 2, 1);
      const x = rnd(4 * C),
        kc = rnd(slots * Tmax * kd),
        vc = rnd(slots * Tmax * kd);
      const [x1, x2, k1, k2, v1, v2] = [x.slice(), x.slice(), kc.slice(), kc.slice(), vc.slice(), vc.slice()];
      const at = [pos, slot, 4, C, H, KVH, D, F, Tmax, 1e-5] as const;
      R.decodeBlock(x1, ...w, ...mlp, cos, sin, k1, v1, ...at, dense);
      N.decodeBlock(x2, ...w, ...mlp, cos, sin, k2, v2, ...at, groups);
      closeToScale(x2, x1, 1e-5, "grouped decodeBlock x");
      close(k2, k1, 1e-5, "grouped decodeBlock key cache");
      assert.ok(maxRelDiff(x1, x) > 1e-2, "the block changed x");
      if (label !== "native") return; // the WebGPU set runs dense and checks no groups
      assert.throws(
        () => N.decodeBlock(x2, ...w, ...mlp, cos, sin, k2, v2, ...at, Int32Array.of(3, 24, 2, 1, 40)),
        /groups \(3, 24, 2, 1, 40\) do not fit C 48/,
      );
      assert.throws(
        () => N.decodeBlock(x2, ...w, ...mlp, cos, sin, k2, v2, ...at, Int32Array.of(2)),
        /groups holds 1 values/,
      );
    },
  );

  const N_matmul = (dy: Float32Array, W: Uint16Array, dx: Float32Array, n: number, i: number, o: number) =>
    N.matmulBf16(dy, W, dx, n, i, o, 1);

  test(
    "matmulBf16 (a frozen bf16 linear's input gradient) agrees with the reference and gemm on widened W",
    { skip },
    () => {
      for (const [n, inF, outF] of [
        [1, 24, 40],
        [7, 48, 33],
        [70, 96, 130],
      ] as const) {
        const W = toBf16Array(rnd(outF * inF)),
          Wf = widenBf16(W),
          dy = rnd(n * outF),
          init = rnd(n * inF);
        const [a, b, c] = [init.slice(), init.slice(), init.slice()];
        N_matmul(dy, W, a, n, inF, outF);
        R.matmulBf16(dy, W, b, n, inF, outF, 1);
        R.gemm(0, 0, n, inF, outF, 1, dy, 0, outF, 0, Wf, 0, inF, 0, 1, c, 0, inF, 0, 1);
        close(a, b, 1e-5, `matmulBf16 ${n}×${inF}×${outF}: native vs reference`);
        close(a, c, 1e-5, `matmulBf16 ${n}×${inF}×${outF}: vs gemm, accumulating into dx`);
      }
    },
  );

  test(
    "bfloat16 KV cache: attnCached and decodeBlock read and write bf16 keys and values as the reference does",
    { skip },
    () => {
      const { C, H, KVH, D, F, Tmax, slots, qd, kd } = BLOCK,
        n = slots * Tmax * kd;
      const kc = rnd(n),
        vc = rnd(n),
        kh = toBf16Array(kc),
        vh = toBf16Array(vc);
      const pos = Int32Array.of(0, 7, 19),
        slot = Int32Array.of(4, 0, 2),
        q = rnd(3 * H * D),
        sc = 1 / Math.sqrt(D);
      const [o1, o2, o3] = [rnd(3 * H * D), rnd(3 * H * D), rnd(3 * H * D)];
      R.attnCached(q, kh, vh, o1, pos, slot, 3, 1, H, KVH, D, Tmax, sc);
      N.attnCached(q, kh, vh, o2, pos, slot, 3, 1, H, KVH, D, Tmax, sc);
      N.attnCached(q, widenBf16(kh), widenBf16(vh), o3, pos, slot, 3, 1, H, KVH, D, Tmax, sc);
      close(o2, o1, 1e-5, "attnCached, bf16 cache: native vs reference");
      close(o2, o3, 1e-5, "attnCached: a bf16 cache reads as its widened float32 values");
      const none = new Float32Array(0),
        w = [rnd(C), rnd(qd * C), rnd(kd * C), rnd(kd * C), none, none, none] as const;
      const rest = [
        rnd(C * qd),
        rnd(C),
        rnd(F * C),
        rnd(F * C),
        rnd(C * F),
        rnd((Tmax * D) / 2),
        rnd((Tmax * D) / 2),
      ] as const;
      const x = rnd(3 * C),
        [x1, x2] = [x.slice(), x.slice()],
        [k1, k2, v1, v2] = [kh.slice(), kh.slice(), vh.slice(), vh.slice()];
      R.decodeBlock(x1, ...w, ...rest, k1, v1, pos, slot, 3, C, H, KVH, D, F, Tmax, 1e-5, dense);
      N.decodeBlock(x2, ...w, ...rest, k2, v2, pos, slot, 3, C, H, KVH, D, F, Tmax, 1e-5, dense);
      closeToScale(x2, x1, 1e-5, "decodeBlock x, bf16 cache");
      const differ = (a: Uint16Array, b: Uint16Array) =>
        a.reduce((m, v, i) => m + (Math.abs(v - b[i]!) > 1 ? 1 : 0), 0);
      assert.equal(differ(k2, k1), 0, "native and reference store the same bf16 keys (±1 ulp of rounding)");
      assert.equal(differ(v2, v1), 0, "and values");
      assert.ok(differ(k1, kh) > 0 && differ(k1, kh) <= 3 * kd, "only the new positions were written");
      assert.throws(() => N.attnCached(q, kh, vc, o2, pos, slot, 3, 1, H, KVH, D, Tmax, sc), /must be of one type/);
    },
  );

  test(
    "bfloat16 weights: linearBf16 and decodeBlockHalf agree with the reference and with float32 weights",
    { skip },
    () => {
      const bits = (a: Float32Array) => Uint16Array.from(new Uint32Array(a.buffer), (u) => u >>> 16); // truncated
      const inF = 40,
        outF = 24,
        W16 = bits(rnd(outF * inF));
      // one row (the explicit AVX code), a few (4 × 4 tiles and leftovers), many (widened, then sgemm)
      for (const Nr of [1, 3, 6, 20]) {
        const x = rnd(Nr * inF),
          y1 = rnd(Nr * outF),
          y2 = y1.slice(),
          y3 = y1.slice();
        R.linearBf16(x, W16, y1, Nr, inF, outF, 0.5);
        N.linearBf16(x, W16, y2, Nr, inF, outF, 0.5);
        N.gemm(0, 1, Nr, outF, inF, 1, x, 0, inF, 0, widenBf16(W16), 0, inF, 0, 0.5, y3, 0, outF, 0, 1);
        close(y2, y1, 1e-5, `linearBf16 native vs reference, ${Nr} rows`);
        close(y2, y3, 1e-5, `linearBf16 vs gemm on the widened weights, ${Nr} rows`);
      }
      const Nr = 3,
        x = rnd(Nr * inF),
        y2 = rnd(Nr * outF);
      const C = 32,
        H = 4,
        KVH = 2,
        D = 8,
        F = 48,
        Tmax = 10,
        qd = H * D,
        kd = KVH * D,
        e = new Float32Array(0);
      const [wq, wk, wv, wo, wg, wu, wd] = [qd * C, kd * C, kd * C, C * qd, F * C, F * C, C * F].map((n) =>
        bits(rnd(n)),
      );
      const cos = rnd((Tmax * D) / 2),
        sin = rnd((Tmax * D) / 2),
        pos = Int32Array.of(3, 9),
        slot = Int32Array.of(1, 0),
        ln1 = rnd(C),
        ln2 = rnd(C);
      const xs = rnd(2 * C),
        kc = rnd(2 * Tmax * kd),
        vc = rnd(2 * Tmax * kd);
      const [xa, xb, ka, kb, va, vb] = [xs.slice(), xs.slice(), kc.slice(), kc.slice(), vc.slice(), vc.slice()];
      const dims = [pos, slot, 2, C, H, KVH, D, F, Tmax, 1e-5, dense] as const;
      N.decodeBlockHalf(xa, ln1, wq!, wk!, wv!, e, e, e, wo!, ln2, wg!, wu!, wd!, cos, sin, ka, va, ...dims);
      N.decodeBlock(
        xb,
        ln1,
        widenBf16(wq!),
        widenBf16(wk!),
        widenBf16(wv!),
        e,
        e,
        e,
        widenBf16(wo!),
        ln2,
        widenBf16(wg!),
        widenBf16(wu!),
        widenBf16(wd!),
        cos,
        sin,
        kb,
        vb,
        ...dims,
      );
      closeToScale(xa, xb, 1e-5, "decodeBlockHalf vs decodeBlock on the widened weights");
      close(ka, kb, 1e-5, "decodeBlockHalf key cache");
      assert.throws(() => N.linearBf16(x, W16.subarray(1), y2, Nr, inF, outF, 0), /W has 959 elements/);
    },
  );
}

const nat = nativeKernels();
suite("native", nat?.k as Kernels, nat ? false : "native addon not built");
const gpu = webgpuKernels();
suite("webgpu", gpu.set?.k as Kernels, gpu.set ? false : `no WebGPU device (${gpu.why})`);
nodeTest("a WebGPU device is present when CI requires one", { skip: process.env.FRUGAL_REQUIRE_WEBGPU !== "1" }, () => {
  assert.ok(gpu.set, `FRUGAL_REQUIRE_WEBGPU=1 but: ${gpu.why}`);
});

nodeTest(
  "native attnCached: each head-size path (fixed 32, 64, 128; vector 24; scalar 6, 264) agrees, f32 and bf16 caches",
  { skip: nat ? false : "native addon not built" },
  () => {
    const N = nat!.k as Kernels,
      [B, H, KVH, Tmax] = [3, 4, 2, 40];
    const pos = Int32Array.of(0, 17, 35),
      slot = Int32Array.of(2, 0, 1);
    for (const D of [32, 64, 128, 24, 6, 264]) {
      const n = B * Tmax * KVH * D,
        [kc, vc] = [rnd(n), rnd(n)],
        sc = 1 / Math.sqrt(D);
      for (const Tn of [1, 5]) {
        const q = rnd(B * Tn * H * D);
        for (const [k, v, what] of [
          [kc, vc, "f32"],
          [toBf16Array(kc), toBf16Array(vc), "bf16"],
        ] as const) {
          const o1 = new Float32Array(q.length),
            o2 = o1.slice();
          R.attnCached(q, k, v, o1, pos, slot, B, Tn, H, KVH, D, Tmax, sc);
          N.attnCached(q, k, v, o2, pos, slot, B, Tn, H, KVH, D, Tmax, sc);
          close(o2, o1, 1e-5, `attnCached D ${D}, ${Tn} new, ${what} cache`);
        }
      }
    }
  },
);
