// The WGSL of every webgpu kernel, one entry per shader: its uniform parameters, its buffers and its body.
// Deliberately plain (one thread per output element or row, a 16×16 tiled gemm): correctness first, the same
// contract as reference.ts (backward kernels add into grads). Every array carries an element offset (`o…`),
// since the host passes views. bfloat16 arrays are bound as u32 words and read two halves per word.

/** params: names in uniform order, ":f" marks f32 (else u32); bufs: name:type:access (f f32, i i32, h bf16 words). */
export interface ShaderDef {
  params: string;
  bufs: string;
  wg: [number, number];
  body: string;
}

const lin = "let i = (w.y * nw.x + w.x) * 256u + l.x;";
const row = "let r = w.y * nw.x + w.x;";

/** A workgroup-wide sum of `v` over 256 threads (all threads must call it). */
const reduce = `
var<workgroup> red: array<f32, 256>;
fn wsum(v: f32, l: u32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = red[l] + red[l + s]; }
    workgroupBarrier();
  }
  let t = red[0];
  workgroupBarrier();
  return t;
}
fn wmax(v: f32, l: u32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = max(red[l], red[l + s]); }
    workgroupBarrier();
  }
  let t = red[0];
  workgroupBarrier();
  return t;
}`;

/** bfloat16 element `k` (in halves) of a word array, widened to f32; and a float32 rounded to bfloat16 bits. */
export const bf16Helpers = `
fn half(wd: u32, k: u32) -> f32 {
  return bitcast<f32>(select(wd & 0xffffu, wd >> 16u, (k & 1u) == 1u) << 16u);
}
fn tobf(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu) != 0u) { return (u >> 16u) | 0x40u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}`;

const ew = (params: string, bufs: string, stmt: string): ShaderDef => ({
  params: `n ${params}`,
  bufs,
  wg: [256, 1],
  body: `${lin} if (i >= p.n) { return; } ${stmt}`,
});

/** attnCached's body over a cache read through kv(); f32 and bf16 caches differ only in that function. */
const cachedBody = `
  ${lin}
  if (i >= p.B * p.Tn * p.H) { return; }
  let h = i % p.H; let t = (i / p.H) % p.Tn; let b = i / (p.H * p.Tn);
  let kh = h / (p.H / p.KVH);
  let n = u32(pos[p.opos + b]) + t + 1u;
  let sl = u32(slot[p.oslot + b]);
  let q0 = p.oq + ((b * p.Tn + t) * p.H + h) * p.D;
  var m = -3.0e38; var sum = 0.0;
  var acc: array<f32, 256>;
  for (var c = 0u; c < p.D; c++) { acc[c] = 0.0; }
  for (var j = 0u; j < n; j++) {
    let c0 = ((sl * p.Tmax + j) * p.KVH + kh) * p.D;
    var s = 0.0;
    for (var c = 0u; c < p.D; c++) { s += q[q0 + c] * kk(c0 + c); }
    s = s * p.scale;
    let mn = max(m, s); let corr = exp(m - mn); let e = exp(s - mn);
    sum = sum * corr + e;
    for (var c = 0u; c < p.D; c++) { acc[c] = acc[c] * corr + e * vv(c0 + c); }
    m = mn;
  }
  let o0 = p.oo + ((b * p.Tn + t) * p.H + h) * p.D;
  for (var c = 0u; c < p.D; c++) { out[o0 + c] = acc[c] / sum; }`;
const cachedParams = "B Tn H KVH D Tmax scale:f oq okc ovc oo opos oslot";

export const SHADERS: Record<string, ShaderDef> = {
  /** 64×64 tiles of C per 16×16 workgroup, 4×4 per thread, through workgroup memory in steps of 16 along K. */
  gemm: {
    params: "ta tb M N K alpha:f lda sA ldb sB beta:f ldc sC oA oB oC",
    bufs: "A:f:r B:f:r C:f:w",
    wg: [16, 16],
    body: `
  let b = w.z; let tid = l.y * 16u + l.x; let row0 = w.y * 64u; let col0 = w.x * 64u;
  let a0 = p.oA + b * p.sA; let b0 = p.oB + b * p.sB;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += 16u) {
    for (var e = 0u; e < 4u; e++) {
      let idx = tid + e * 256u;
      let r = row0 + idx / 16u; let ka = k0 + idx % 16u;
      var av = 0.0;
      if (r < p.M && ka < p.K) {
        if (p.ta == 1u) { av = A[a0 + ka * p.lda + r]; } else { av = A[a0 + r * p.lda + ka]; }
      }
      ta_[idx] = av;
      let kb = k0 + idx / 64u; let c = col0 + idx % 64u;
      var bv = 0.0;
      if (kb < p.K && c < p.N) {
        if (p.tb == 1u) { bv = B[b0 + c * p.ldb + kb]; } else { bv = B[b0 + kb * p.ldb + c]; }
      }
      tb_[idx] = bv;
    }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      var av: array<f32, 4>; var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = ta_[(l.y * 4u + i) * 16u + k]; bv[i] = tb_[k * 64u + l.x * 4u + i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += av[i] * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + l.y * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + l.x * 4u + j;
      if (r < p.M && c < p.N) {
        let ci = p.oC + b * p.sC + r * p.ldc + c;
        if (p.beta == 0.0) { C[ci] = p.alpha * acc[i * 4u + j]; }
        else { C[ci] = p.alpha * acc[i * 4u + j] + p.beta * C[ci]; }
      }
    }
  }`,
  },
  add: ew("oa ob oo", "a:f:r b:f:r o:f:w", "o[p.oo + i] = a[p.oa + i] + b[p.ob + i];"),
  mul: ew("oa ob oo", "a:f:r b:f:r o:f:w", "o[p.oo + i] = a[p.oa + i] * b[p.ob + i];"),
  axpy: ew("alpha:f ox oy", "x:f:r y:f:w", "y[p.oy + i] = y[p.oy + i] + p.alpha * x[p.ox + i];"),
  swigluFwd: ew(
    "og ou oo",
    "g:f:r u:f:r o:f:w",
    "let x = g[p.og + i]; o[p.oo + i] = x / (1.0 + exp(-x)) * u[p.ou + i];",
  ),
  swigluBwd: ew(
    "od og ou odg odu",
    "dout:f:r g:f:r u:f:r dg:f:w du:f:w",
    `let x = g[p.og + i]; let s = 1.0 / (1.0 + exp(-x)); let d = dout[p.od + i];
     dg[p.odg + i] = dg[p.odg + i] + d * u[p.ou + i] * s * (1.0 + x * (1.0 - s));
     du[p.odu + i] = du[p.odu + i] + d * x * s;`,
  ),
  adamw: ew(
    "lr:f b1:f b2:f eps:f wd:f bc1:f bc2:f gs:f op og om ov",
    "pm:f:w g:f:r m:f:w v:f:w",
    `let gi = g[p.og + i] * p.gs;
     let mi = p.b1 * m[p.om + i] + (1.0 - p.b1) * gi; let vi = p.b2 * v[p.ov + i] + (1.0 - p.b2) * gi * gi;
     m[p.om + i] = mi; v[p.ov + i] = vi;
     let x = pm[p.op + i];
     pm[p.op + i] = x - p.lr * (mi / p.bc1 / (sqrt(vi / p.bc2) + p.eps) + p.wd * x);`,
  ),
  embeddingFwd: ew(
    "C oW oi oo",
    "W:f:r ids:i:r o:f:w",
    "let r = i / p.C; o[p.oo + i] = W[p.oW + u32(ids[p.oi + r]) * p.C + i % p.C];",
  ),
  embeddingBwd: ew(
    "rows od oi oW",
    "dout:f:r ids:i:r dW:f:w",
    `for (var r = 0u; r < p.rows; r++) {
       let k = p.oW + u32(ids[p.oi + r]) * p.n + i; dW[k] = dW[k] + dout[p.od + r * p.n + i];
     }`,
  ),
  rope: ew(
    "H D inverse ox oo opos ocos osin",
    "x:f:r o:f:w pos:i:r cos:f:r sin:f:r",
    `let hf = p.D / 2u; let k = i % hf; let rh = i / hf; let r = rh / p.H;
     let base = rh * p.D; let ti = u32(pos[p.opos + r]) * hf + k;
     let c = cos[p.ocos + ti]; let s = select(1.0, -1.0, p.inverse == 1u) * sin[p.osin + ti];
     let a = x[p.ox + base + k]; let bb = x[p.ox + base + k + hf];
     let o1 = a * c - bb * s; let o2 = bb * c + a * s;
     if (p.inverse == 1u) {
       o[p.oo + base + k] = o[p.oo + base + k] + o1; o[p.oo + base + k + hf] = o[p.oo + base + k + hf] + o2;
     } else { o[p.oo + base + k] = o1; o[p.oo + base + k + hf] = o2; }`,
  ),
  rmsnormFwd: {
    params: "rows C eps:f ox ow oo orstd",
    bufs: "x:f:r wt:f:r o:f:w rstd:f:w",
    wg: [256, 1],
    body: `${row} if (r >= p.rows) { return; }
  var ss = 0.0;
  for (var c = l.x; c < p.C; c += 256u) { let v = x[p.ox + r * p.C + c]; ss += v * v; }
  let s = 1.0 / sqrt(wsum(ss, l.x) / f32(p.C) + p.eps);
  if (l.x == 0u) { rstd[p.orstd + r] = s; }
  for (var c = l.x; c < p.C; c += 256u) { o[p.oo + r * p.C + c] = x[p.ox + r * p.C + c] * s * wt[p.ow + c]; }`,
  },
  rmsnormBwdDx: {
    params: "rows C od ox ow orstd odx",
    bufs: "dout:f:r x:f:r wt:f:r rstd:f:r dx:f:w",
    wg: [256, 1],
    body: `${row} if (r >= p.rows) { return; }
  let s = rstd[p.orstd + r];
  var dot = 0.0;
  for (var c = l.x; c < p.C; c += 256u) { dot += dout[p.od + r * p.C + c] * wt[p.ow + c] * x[p.ox + r * p.C + c]; }
  let k = wsum(dot, l.x) * s * s * s / f32(p.C);
  for (var c = l.x; c < p.C; c += 256u) {
    let j = r * p.C + c;
    dx[p.odx + j] = dx[p.odx + j] + dout[p.od + j] * wt[p.ow + c] * s - x[p.ox + j] * k;
  }`,
  },
  rmsnormBwdDw: ew(
    "rows od ox orstd odw",
    "dout:f:r x:f:r rstd:f:r dw:f:w",
    `var acc = 0.0;
     for (var r = 0u; r < p.rows; r++) { acc += dout[p.od + r * p.n + i] * x[p.ox + r * p.n + i] * rstd[p.orstd + r]; }
     dw[p.odw + i] = dw[p.odw + i] + acc;`,
  ),
  logsoftmaxGather: {
    params: "rows V ol ot olp olse",
    bufs: "logits:f:r tgt:i:r logp:f:w lse:f:w",
    wg: [256, 1],
    body: `${row} if (r >= p.rows) { return; }
  let r0 = p.ol + r * p.V;
  var mx = -3.0e38;
  for (var v = l.x; v < p.V; v += 256u) { mx = max(mx, logits[r0 + v]); }
  mx = wmax(mx, l.x);
  var s = 0.0;
  for (var v = l.x; v < p.V; v += 256u) { s += exp(logits[r0 + v] - mx); }
  let z = mx + log(wsum(s, l.x));
  if (l.x == 0u) { lse[p.olse + r] = z; logp[p.olp + r] = logits[r0 + u32(tgt[p.ot + r])] - z; }`,
  },
  logsoftmaxGatherBwd: ew(
    "V ol olse ot odl odx",
    "logits:f:r lse:f:r tgt:i:r dlogp:f:r dx:f:w",
    `let r = i / p.V; let d = dlogp[p.odl + r];
     var g = -d * exp(logits[p.ol + i] - lse[p.olse + r]);
     if (u32(tgt[p.ot + r]) == i % p.V) { g += d; }
     dx[p.odx + i] = dx[p.odx + i] + g;`,
  ),
  sumsq: {
    params: "n ox",
    bufs: "x:f:r o:f:w",
    wg: [256, 1],
    body: `var s = 0.0;
  for (var i = l.x; i < p.n; i += 256u) { let v = x[p.ox + i]; s += v * v; }
  let t = wsum(s, l.x);
  if (l.x == 0u) { o[0] = t; }`,
  },
  attnFwd: ew(
    "T H KVH D scale:f oq ok ov oo oP",
    "q:f:r k:f:r v:f:r out:f:w P:f:w",
    `if (i >= p.n) { return; }
     let t = i % p.T; let bh = i / p.T; let h = bh % p.H; let b = bh / p.H; let kh = h / (p.H / p.KVH);
     let p0 = p.oP + bh * p.T * p.T + t * p.T; let q0 = p.oq + ((b * p.T + t) * p.H + h) * p.D;
     var mx = -3.0e38;
     for (var j = 0u; j <= t; j++) {
       let k0 = p.ok + ((b * p.T + j) * p.KVH + kh) * p.D; var s = 0.0;
       for (var d = 0u; d < p.D; d++) { s += q[q0 + d] * k[k0 + d]; }
       P[p0 + j] = s * p.scale; mx = max(mx, s * p.scale);
     }
     for (var j = t + 1u; j < p.T; j++) { P[p0 + j] = 0.0; }
     var sum = 0.0;
     for (var j = 0u; j <= t; j++) { let e = exp(P[p0 + j] - mx); P[p0 + j] = e; sum += e; }
     for (var j = 0u; j <= t; j++) { P[p0 + j] = P[p0 + j] / sum; }
     for (var d = 0u; d < p.D; d++) {
       var o = 0.0;
       for (var j = 0u; j <= t; j++) { o += P[p0 + j] * v[p.ov + ((b * p.T + j) * p.KVH + kh) * p.D + d]; }
       out[p.oo + ((b * p.T + t) * p.H + h) * p.D + d] = o;
     }`,
  ),
  /** attnBwd, part 1: dS = P ⊙ (dP − Σ P·dP) · scale per row, into a (B,H,T,T) scratch. */
  attnBwdS: ew(
    "T H KVH D scale:f od ov oP oS",
    "dout:f:r v:f:r P:f:r S:f:w",
    `let t = i % p.T; let bh = i / p.T; let h = bh % p.H; let b = bh / p.H; let kh = h / (p.H / p.KVH);
     let p0 = bh * p.T * p.T + t * p.T; let q0 = p.od + ((b * p.T + t) * p.H + h) * p.D; let s0 = p.oS + p0;
     var dot = 0.0;
     for (var j = 0u; j <= t; j++) {
       let k0 = p.ov + ((b * p.T + j) * p.KVH + kh) * p.D; var s = 0.0;
       for (var d = 0u; d < p.D; d++) { s += dout[q0 + d] * v[k0 + d]; }
       S[s0 + j] = s; dot += s * P[p.oP + p0 + j];
     }
     for (var j = 0u; j <= t; j++) { S[s0 + j] = P[p.oP + p0 + j] * (S[s0 + j] - dot) * p.scale; }`,
  ),
  /** attnBwd, part 2: dq (B,T,H,D) += dS · k. */
  attnBwdQ: ew(
    "T H KVH D oS ok odq",
    "S:f:r k:f:r dq:f:w",
    `let d = i % p.D; let h = (i / p.D) % p.H; let t = (i / (p.D * p.H)) % p.T; let b = i / (p.D * p.H * p.T);
     let kh = h / (p.H / p.KVH); let s0 = p.oS + ((b * p.H + h) * p.T + t) * p.T;
     var acc = 0.0;
     for (var j = 0u; j <= t; j++) { acc += S[s0 + j] * k[p.ok + ((b * p.T + j) * p.KVH + kh) * p.D + d]; }
     dq[p.odq + i] = dq[p.odq + i] + acc;`,
  ),
  /** attnBwd, part 3: dk, dv (B,T,KVH,D) summed over the heads that share them and the queries after them. */
  attnBwdKV: ew(
    "T H KVH D oS oP oq od odk odv",
    "S:f:r P:f:r q:f:r dout:f:r dk:f:w dv:f:w",
    `let d = i % p.D; let kh = (i / p.D) % p.KVH; let j = (i / (p.D * p.KVH)) % p.T; let b = i / (p.D * p.KVH * p.T);
     let rep = p.H / p.KVH;
     var ak = 0.0; var av = 0.0;
     for (var h = kh * rep; h < (kh + 1u) * rep; h++) {
       for (var t = j; t < p.T; t++) {
         let si = ((b * p.H + h) * p.T + t) * p.T + j; let qi = ((b * p.T + t) * p.H + h) * p.D + d;
         ak += S[p.oS + si] * q[p.oq + qi]; av += P[p.oP + si] * dout[p.od + qi];
       }
     }
     dk[p.odk + i] = dk[p.odk + i] + ak; dv[p.odv + i] = dv[p.odv + i] + av;`,
  ),
  attnCached: {
    params: cachedParams,
    bufs: "q:f:r kc:f:r vc:f:r out:f:w pos:i:r slot:i:r",
    wg: [256, 1],
    body: cachedBody,
  },
  attnCachedHalf: {
    params: cachedParams,
    bufs: "q:f:r kc:h:r vc:h:r out:f:w pos:i:r slot:i:r",
    wg: [256, 1],
    body: cachedBody,
  },
  /** Writes rows of x (N, kd) into a float32 cache at (slot[b]·Tmax + pos[b])·kd. */
  cacheWrite: ew(
    "kd Tmax ox oc opos oslot",
    "x:f:r c:f:w pos:i:r slot:i:r",
    `let b = i / p.kd; let e = i % p.kd;
     c[p.oc + (u32(slot[p.oslot + b]) * p.Tmax + u32(pos[p.opos + b])) * p.kd + e] = x[p.ox + i];`,
  ),
  /** The same into a bfloat16 cache: each thread sets its half of a word atomically (neighbours share words). */
  cacheWriteHalf: ew(
    "kd Tmax ox oc opos oslot",
    "x:f:r c:H:w pos:i:r slot:i:r",
    `let b = i / p.kd; let e = i % p.kd;
     let k = p.oc + (u32(slot[p.oslot + b]) * p.Tmax + u32(pos[p.opos + b])) * p.kd + e;
     let bits = tobf(x[p.ox + i]);
     if ((k & 1u) == 1u) { atomicAnd(&c[k >> 1u], 0xffffu); atomicOr(&c[k >> 1u], bits << 16u); }
     else { atomicAnd(&c[k >> 1u], 0xffff0000u); atomicOr(&c[k >> 1u], bits); }`,
  ),
  /** y (N, out) = beta·y + x (N, in) · Wᵀ, W (out, in) as bfloat16. */
  linearBf16: ew(
    "inF outF beta:f ox oW oy",
    "x:f:r W:h:r y:f:w",
    `let o = i % p.outF; let r = i / p.outF;
     var acc = 0.0;
     for (var k = 0u; k < p.inF; k++) {
       let e = p.oW + o * p.inF + k; acc += x[p.ox + r * p.inF + k] * half(W[e >> 1u], e);
     }
     if (p.beta == 0.0) { y[p.oy + i] = acc; } else { y[p.oy + i] = p.beta * y[p.oy + i] + acc; }`,
  ),
  /** dx (N, in) = beta·dx + dy (N, out) · W, W (out, in) as bfloat16. */
  matmulBf16: ew(
    "inF outF beta:f ody oW odx",
    "dy:f:r W:h:r dx:f:w",
    `let c = i % p.inF; let r = i / p.inF;
     var acc = 0.0;
     for (var o = 0u; o < p.outF; o++) {
       let e = p.oW + o * p.inF + c; acc += dy[p.ody + r * p.outF + o] * half(W[e >> 1u], e);
     }
     if (p.beta == 0.0) { dx[p.odx + i] = acc; } else { dx[p.odx + i] = p.beta * dx[p.odx + i] + acc; }`,
  ),
};

const wgslType = { f: "array<f32>", i: "array<i32>", h: "array<u32>", H: "array<atomic<u32>>" } as const;

const parsed = new Map<ShaderDef, { params: [string, boolean][]; bufs: [string, keyof typeof wgslType, boolean][] }>();
function parse(def: ShaderDef) {
  let p = parsed.get(def);
  if (!p) {
    p = {
      params: def.params.split(/\s+/).map((s): [string, boolean] => [s.replace(":f", ""), s.endsWith(":f")]),
      bufs: def.bufs.split(/\s+/).map((s): [string, keyof typeof wgslType, boolean] => {
        const [n, t, a] = s.split(":") as [string, keyof typeof wgslType, string];
        return [n, t, a === "w"];
      }),
    };
    parsed.set(def, p);
  }
  return p;
}

/** A def's parameters: [name, isFloat] in uniform order. */
export function paramList(def: ShaderDef): [string, boolean][] {
  return parse(def).params;
}

/** A def's buffers: [name, type letter, writable]. */
export function bufList(def: ShaderDef): [string, keyof typeof wgslType, boolean][] {
  return parse(def).bufs;
}

/** The full WGSL module of one shader. */
export function wgsl(name: string): string {
  const def = SHADERS[name]!;
  const fields = paramList(def)
    .map(([n, f]) => `${n}: ${f ? "f32" : "u32"}`)
    .join(", ");
  const bindings = bufList(def)
    .map(([n, t, wr], k) => {
      const access = wr ? "read_write" : "read";
      return `@group(0) @binding(${k + 1}) var<storage, ${access}> ${n}: ${wgslType[t]};`;
    })
    .join("\n");
  const kvRead = def.bufs.includes("kc:h")
    ? `fn kk(k: u32) -> f32 { let e = p.okc + k; return half(kc[e >> 1u], e); }
fn vv(k: u32) -> f32 { let e = p.ovc + k; return half(vc[e >> 1u], e); }`
    : `fn kk(k: u32) -> f32 { return kc[p.okc + k]; }
fn vv(k: u32) -> f32 { return vc[p.ovc + k]; }`;
  const tiles = name === "gemm" ? "var<workgroup> ta_: array<f32, 1024>;\nvar<workgroup> tb_: array<f32, 1024>;" : "";
  return `struct Params { ${fields} }
@group(0) @binding(0) var<uniform> p: Params;
${bindings}
${bf16Helpers}
${def.body.includes("wsum") || def.body.includes("wmax") ? reduce : ""}
${name.startsWith("attnCached") ? kvRead : ""}
${tiles}
@compute @workgroup_size(${def.wg[0]}, ${def.wg[1]})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_id) l: vec3u, @builtin(num_workgroups) nw: vec3u) {
${def.body}
}`;
}
