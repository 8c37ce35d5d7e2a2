// The block-diagonal shape of a merged ensemble (surgery.ts mergeModels): n members' dims, heads and MLP units
// side by side, every layer projection zero off its n diagonal blocks, plus any dims and heads no member reads
// or writes (the silent heads of a bias channel). Found from the weights, so it survives saving, GGUF and
// resuming; the forward then runs each projection over its blocks only (n× less matrix work), and training keeps
// the rest zero. Near-zero is not zero: one nonzero weight off the blocks and the model runs dense.
import type { ModelConfig } from "./config.js";
import { headDim } from "./config.js";

/** One member's widths inside the merged model; dims and heads past n members' are silent. */
export interface Blocks {
  n: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
}

type Weights = (name: string) => Float32Array;

/** [rows, cols] of one member's block of the projection `tail` (e.g. "self_attn.q_proj.weight"), or undefined. */
export function blockShape(b: Blocks, D: number, tail: string): [number, number] | undefined {
  if (tail === "self_attn.q_proj.weight") return [b.heads * D, b.hidden];
  if (tail === "self_attn.k_proj.weight" || tail === "self_attn.v_proj.weight") return [b.kvHeads * D, b.hidden];
  if (tail === "self_attn.o_proj.weight") return [b.hidden, b.heads * D];
  if (tail === "mlp.gate_proj.weight" || tail === "mlp.up_proj.weight") return [b.intermediate, b.hidden];
  if (tail === "mlp.down_proj.weight") return [b.hidden, b.intermediate];
  return undefined;
}

/**
 * One member's widths if config c held n members side by side, the heads past n members' silent (a bias channel's,
 * one head's width each); undefined when n members cannot fit c.
 */
export function memberShape(c: ModelConfig, n: number): Blocks | undefined {
  const H = c.num_attention_heads,
    kvHeads = Math.floor(c.num_key_value_heads / n),
    heads = (kvHeads * H) / c.num_key_value_heads,
    hidden = (c.hidden_size - (H - n * heads) * headDim(c)) / n;
  return Number.isInteger(hidden) && hidden > 0 && kvHeads > 0 && c.intermediate_size % n === 0
    ? { n, hidden, heads, kvHeads, intermediate: c.intermediate_size / n }
    : undefined;
}

/** The member shapes n members could have in a model of config c (most members first). */
function candidates(c: ModelConfig): Blocks[] {
  const out: Blocks[] = [];
  for (let n = c.num_key_value_heads; n >= 2; n--) {
    const b = memberShape(c, n);
    if (b) out.push(b);
  }
  return out;
}

/**
 * True when W (rows, cols) is zero wherever a member's output rows read another member's inputs (cols below
 * n·colsPer), in silent rows when `silentRowsZero`, and in silent cols when `silentColsZero`.
 */
function zeroOffBlocks(
  W: Float32Array,
  cols: number,
  n: number,
  [rowsPer, colsPer]: [number, number],
  silentRowsZero: boolean,
  silentColsZero: boolean,
): boolean {
  const rows = W.length / cols;
  for (let r = 0; r < rows; r++) {
    const m = Math.floor(r / rowsPer),
      base = r * cols;
    if (m >= n) {
      if (silentRowsZero) for (let j = 0; j < cols; j++) if (W[base + j] !== 0) return false;
      continue;
    }
    const lo = m * colsPer,
      hi = lo + colsPer,
      end = silentColsZero ? cols : n * colsPer;
    for (let j = 0; j < end; j++) if ((j < lo || j >= hi) && W[base + j] !== 0) return false;
  }
  return true;
}

/** Every silent dim reads as 0 in each layer's normed input: its embedding column or all its norm gains are 0. */
function silentDimsUnread(c: ModelConfig, b: Blocks, w: Weights): boolean {
  const C = c.hidden_size,
    emb = w("model.embed_tokens.weight"),
    L = c.num_hidden_layers;
  for (let j = b.n * b.hidden; j < C; j++) {
    let gains = true;
    for (let l = 0; l < L && gains; l++)
      gains =
        w(`model.layers.${l}.input_layernorm.weight`)[j] === 0 &&
        w(`model.layers.${l}.post_attention_layernorm.weight`)[j] === 0;
    if (gains) continue;
    for (let v = 0; v < c.vocab_size; v++) if (emb[v * C + j] !== 0) return false;
  }
  return true;
}

function fits(c: ModelConfig, b: Blocks, w: Weights): boolean {
  const D = headDim(c);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    for (const tail of [
      "self_attn.q_proj.weight",
      "self_attn.k_proj.weight",
      "self_attn.v_proj.weight",
      "mlp.gate_proj.weight",
      "mlp.up_proj.weight",
    ]) {
      // a silent head's q/k/v rows may hold anything: no member's output reads that head (o_proj below)
      if (!zeroOffBlocks(w(`model.layers.${l}.${tail}`), c.hidden_size, b.n, blockShape(b, D, tail)!, false, false))
        return false;
    }
    // outputs: nothing written to a silent dim, nothing read from a silent head
    const o = "self_attn.o_proj.weight",
      d = "mlp.down_proj.weight";
    if (!zeroOffBlocks(w(`model.layers.${l}.${o}`), c.num_attention_heads * D, b.n, blockShape(b, D, o)!, true, true))
      return false;
    if (!zeroOffBlocks(w(`model.layers.${l}.${d}`), c.intermediate_size, b.n, blockShape(b, D, d)!, true, true))
      return false;
  }
  return silentDimsUnread(c, b, w);
}

/** The block structure of the model's weights (most members that fit), or undefined when it has none. */
export function findBlocks(c: ModelConfig, w: Weights): Blocks | undefined {
  return candidates(c).find((b) => fits(c, b, w));
}
