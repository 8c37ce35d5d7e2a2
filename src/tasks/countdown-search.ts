// Countdown search written out as reasoning: a depth-first solver that combines two numbers at a time (the
// move whose numbers then sum nearest the target first) and writes every candidate it tries, each dead end
// ("no"), each step back from a deeper state ("back") and a final check of the
// path it answers with, under a budget of leaves. Order and budget vary per trace (seeded), so a model
// pretrained on these is a real but imperfect searcher. Also: counting those behaviours in any text, and the
// calculator that writes a search's results while the model samples, with its referee (legal moves only); neither
// picks a move for the model.
import type { Rng } from "../common/rng.js";

/** Intermediate values above this are never written (the generator keeps to the same rule). */
export const MAX_VALUE = 1000;

export interface Item {
  v: number;
  expr: string;
}
interface Move {
  line: string; // "80-12=68"
  item: Item;
  rest: Item[];
}

const wrap = (it: Item) => (/[-+*/]/.test(it.expr) ? `(${it.expr})` : it.expr);

/** Every way to combine two of the items into a positive integer ≤ MAX_VALUE, larger operand first. */
export function moves(items: Item[]): Move[] {
  const out: Move[] = [];
  for (let i = 0; i < items.length; i++)
    for (let j = i + 1; j < items.length; j++) {
      const [x, y] = items[i]!.v >= items[j]!.v ? [items[i]!, items[j]!] : [items[j]!, items[i]!];
      const rest = items.filter((_, k) => k !== i && k !== j);
      const ops: [string, number][] = [
        ["+", x.v + y.v],
        ["-", x.v - y.v],
        ["*", x.v * y.v],
      ];
      if (y.v > 1 && x.v % y.v === 0) ops.push(["/", x.v / y.v]);
      for (const [op, v] of ops) {
        if (v <= 0 || v > MAX_VALUE || (op === "*" && y.v === 1)) continue;
        out.push({ line: `${x.v}${op}${y.v}=${v}`, item: { v, expr: `${wrap(x)}${op}${wrap(y)}` }, rest });
      }
    }
  return out;
}

export interface SearchStyle {
  /** leaves (two-number checks) the search may write before it gives up */
  budget: number;
  /** chance that a node's candidates are tried in random order instead of nearest-to-target first */
  shuffle: number;
  /** write only the path to the answer (no dead ends), when one is found */
  pathOnly: boolean;
}

export interface SearchResult {
  reasoning: string;
  /** the answer expression, or the closest leaf tried when the budget ran out */
  answer: string;
  solved: boolean;
}

/** The numbers left and the target, so a pair's check can compare with a target written close by. */
const state = (items: Item[], target: number) => `(${items.map((i) => i.v).join(" ")} to ${target})`;

/** Depth-first search over pairwise combinations, written as it goes. */
export function searchTrace(nums: number[], target: number, style: SearchStyle, rng: Rng): SearchResult {
  const lines: string[] = [];
  let leaves = 0,
    best: { d: number; expr: string } = { d: Infinity, expr: nums.join("+") };
  const order = (ms: Move[]) => {
    if (rng.next() < style.shuffle) return rng.shuffle([...ms]);
    // the sum heuristic: first the move that leaves numbers whose sum is nearest the target
    const key = (m: Move) => Math.abs(m.rest.reduce((a, r) => a + r.v, m.item.v) - target) + rng.next() * 0.5;
    return ms
      .map((m) => ({ m, k: key(m) }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.m);
  };
  // returns the winning path of move lines, or null
  const dfs = (items: Item[]): string[] | null => {
    const ms = order(moves(items));
    if (items.length === 2) {
      // a leaf: the candidate nearest the target, so one line settles the pair
      const m = ms.length
        ? ms.reduce((a, b) => (Math.abs(b.item.v - target) < Math.abs(a.item.v - target) ? b : a))
        : null;
      leaves++;
      if (!m) {
        lines.push(`${items[0]!.v},${items[1]!.v} none`);
        return null;
      }
      const hit = m.item.v === target;
      lines.push(`${m.line} ${hit ? "yes" : "no"}`);
      const d = Math.abs(m.item.v - target);
      if (d < best.d) best = { d, expr: m.item.expr };
      return hit ? [m.line] : null;
    }
    for (const m of ms) {
      if (leaves >= style.budget) return null;
      lines.push(`${m.line} ${state([...m.rest, m.item], target)}`);
      const r = dfs([...m.rest, m.item]);
      if (r) return [m.line, ...r];
      if (m.rest.length > 1) lines.push("back"); // a leaf's "no" already closes it
    }
    return null;
  };
  const start = nums.map((n) => ({ v: n, expr: String(n) }));
  const path = dfs(start);
  if (!path) {
    lines.push("give up");
    return { reasoning: lines.join(" "), answer: best.expr, solved: false };
  }
  const answer = answerOf(start, path);
  const shown = style.pathOnly ? pathLines(start, path, target) : lines;
  return { reasoning: [...shown, `check ${path.join(" ")} ok`].join(" "), answer, solved: true };
}

/** Replays the path's move lines over the start items and returns the final expression. */
function answerOf(start: Item[], path: string[]): string {
  let items = start;
  for (const line of path) {
    const m = moves(items).find((x) => x.line === line)!;
    items = [...m.rest, m.item];
  }
  return items[0]!.expr;
}

/** The path alone, written as the search would write it with no dead ends. */
function pathLines(start: Item[], path: string[], target: number): string[] {
  let items = start;
  return path.map((line, k) => {
    const m = moves(items).find((x) => x.line === line)!;
    items = [...m.rest, m.item];
    return k === path.length - 1 ? `${line} yes` : `${line} ${state(items, target)}`;
  });
}

/** All integer values reachable using every number exactly once (intermediates positive, ≤ MAX_VALUE). */
export function reachable(nums: number[]): Set<number> {
  const out = new Set<number>();
  const go = (items: Item[]) => {
    if (items.length === 1) return void out.add(items[0]!.v);
    for (const m of moves(items)) go([...m.rest, m.item]);
  };
  go(nums.map((v) => ({ v, expr: "" })));
  return out;
}

export interface Behaviour {
  /** candidate operations written (every "a op b=c" outside the final check) */
  candidates: number;
  backtracks: number;
  /** final checks written */
  verifications: number;
}

/** A written step, "a op b=c". */
export const OP_LINE = /\d+[-+*/]\d+=\d+/g;
/** Counts the search behaviours in a reasoning text (any text: a model's or the solver's). */
export function behaviourOf(reasoning: string): Behaviour {
  const text = reasoning.slice(0, 20_000);
  const checkAt = text.indexOf("check");
  const searched = checkAt >= 0 ? text.slice(0, checkAt) : text;
  return {
    candidates: (searched.match(OP_LINE) ?? []).length,
    backtracks: (text.match(/\bback\b/g) ?? []).length,
    verifications: (text.match(/\bcheck\b/g) ?? []).length,
  };
}

export interface Faithfulness {
  /** share of written steps ("a op b=c", the final check's too) whose result is wrong */
  miscalculated?: number;
  /** share of written states "(… to t)" that are not the state they extend with the step applied */
  strayStates?: number;
  /** share of "yes" leaves whose written result is not the target */
  falseYes?: number;
}

const STEP = /(\d+)([-+*/])(\d+)=(-?\d+)(?: \(([\d ]+) to (\d+)\)| (yes|no))?|\bback\b/g;
const exact = (a: number, op: string, b: number) =>
  op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : b !== 0 && a % b === 0 ? a / b : NaN;
const sameBag = (x: number[], y: number[]) =>
  x.length === y.length && [...x].sort((a, b) => a - b).join() === [...y].sort((a, b) => a - b).join();

/** The state a move leaves: `state` without a and b, then c; null when a or b is not in it. */
function after(state: readonly number[], a: number, b: number, c: number): number[] | null {
  const rest = [...state];
  for (const x of [a, b]) {
    const i = rest.indexOf(x);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return [...rest, c];
}

/** A state of a written search and the moves written from it so far (a+b and b+a are one move). */
interface Frame {
  state: number[];
  tried: Set<string>;
}
const moveKey = (a: number, op: string, b: number) =>
  (op === "+" || op === "*") && a < b ? `${b}${op}${a}` : `${a}${op}${b}`;

/**
 * Replays a written search from the problem's numbers: each step is shown with the state it extends (onStep),
 * "back" returns to the state above, a leaf closes its two-number state, a written state is entered as written.
 * Returns the state the text ends in, with the moves already written from it.
 */
function replay(
  text: string,
  nums: readonly number[],
  onStep: (m: RegExpMatchArray, state: readonly number[]) => void = () => {},
): Frame {
  const stack: Frame[] = [{ state: [...nums], tried: new Set() }];
  for (const m of text.matchAll(STEP)) {
    if (m[0] === "back") {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const top = stack[stack.length - 1]!;
    onStep(m, top.state);
    top.tried.add(moveKey(Number(m[1]), m[2]!, Number(m[3])));
    if (m[7]) {
      if (stack.length > 1 && top.state.length === 2) stack.pop(); // a leaf closes its state
    } else if (m[5] !== undefined) stack.push({ state: m[5].trim().split(/ +/).map(Number), tried: new Set() });
  }
  return stack[stack.length - 1]!;
}

/**
 * Whether the written search is true to its own rules: its arithmetic, the states it writes (replayed from
 * the problem's numbers, stepping back on "back" and after each leaf) and its "yes" claims. A share is left
 * out when the text has nothing it applies to.
 */
export function faithfulnessOf(reasoning: string, nums: readonly number[], target: number): Faithfulness {
  let steps = 0,
    wrong = 0,
    states = 0,
    stray = 0,
    yes = 0,
    falseYes = 0;
  const text = reasoning.slice(0, 20_000).trimEnd();
  replay(text, nums, (m, state) => {
    // a last step with nothing after its result may be cut short (a completion that ran out of tokens)
    if (m.index! + m[0].length === text.length && m[5] === undefined && !m[7]) return;
    const [a, op, b, c] = [Number(m[1]), m[2]!, Number(m[3]), Number(m[4])];
    steps++;
    if (exact(a, op, b) !== c) wrong++;
    if (m[7] === "yes") {
      yes++;
      if (c !== target) falseYes++;
    } else if (!m[7] && m[5] !== undefined) {
      const written = m[5].trim().split(/ +/).map(Number);
      states++;
      if (!(sameBag(written, after(state, a, b, c) ?? []) && Number(m[6]) === target)) stray++;
    }
  });
  const share = (x: number, n: number) => (n > 0 ? x / n : undefined);
  const out: Faithfulness = {
    miscalculated: share(wrong, steps),
    strayStates: share(stray, states),
    falseYes: share(falseYes, yes),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/**
 * The calculator of a search in progress: when the text ends in a step's "a op b=", the exact result and what
 * follows it — the state it leaves ("c (… to t)"), or at a pair's leaf the verdict ("c yes" / "c no"), or in the
 * final check the result alone. Null when the text does not end so, or the step is not exact (a number not in
 * the state, a division with a remainder). It replays the text's own states, as faithfulnessOf does. When the
 * text ends in "<answer>", the answer that the last check's steps spell (checkedAnswer).
 */
export function calculatorStep(text: string, nums: readonly number[], target: number): string | null {
  if (text.endsWith("<answer>")) return checkedAnswer(text, nums, target);
  const m = /(?<!\d)(\d+)([-+*/])(\d+)=$/.exec(text);
  if (!m) return null;
  const [a, op, b] = [Number(m[1]), m[2]!, Number(m[3])],
    c = exact(a, op, b);
  if (!Number.isSafeInteger(c) || c < 0) return null;
  if (text.includes("check")) return String(c);
  const next = after(replay(text.slice(0, m.index), nums).state, a, b, c);
  if (!next) return null;
  return next.length === 1 ? `${c} ${c === target ? "yes" : "no"}` : `${c} (${next.join(" ")} to ${target})`;
}

/**
 * The expression that the last check's steps spell, when they start from the problem's numbers, use each
 * number (or a result before them) once, compute exactly and end at the target with every number used; else
 * null. So a search that reached the target and checked its path has its answer written as the path says.
 */
export function checkedAnswer(text: string, nums: readonly number[], target: number): string | null {
  const at = text.lastIndexOf("check");
  if (at < 0) return null;
  const pool = checkPool(text.slice(at), nums);
  const last = pool?.length === 1 && pool[0]!.value === target ? pool[0]!.expr : null;
  return last && last.startsWith("(") ? last.slice(1, -1) : last;
}

/**
 * The numbers a check has to work with after its steps so far: the problem's numbers, less those its steps
 * used, plus their results. Null when a step is not exact or uses a number the pool does not hold.
 */
function checkPool(check: string, nums: readonly number[]): { value: number; expr: string }[] | null {
  const pool = nums.map((n) => ({ value: n, expr: String(n) }));
  const take = (v: number) => {
    const i = pool.findIndex((x) => x.value === v);
    return i < 0 ? null : pool.splice(i, 1)[0]!.expr;
  };
  for (const m of check.matchAll(/(\d+)([-+*/])(\d+)=(\d+)/g)) {
    const [a, op, b, c] = [Number(m[1]), m[2]!, Number(m[3]), Number(m[4])];
    if (exact(a, op, b) !== c) return null;
    const [x, y] = [take(a), take(b)];
    if (x === null || y === null) return null;
    pool.push({ value: c, expr: `(${x}${op}${y})` });
  }
  return pool;
}

/**
 * The moves the solver could write from the state ("a op b=", see moves), less those in `tried`. moves writes the
 * larger operand first, so a line's "a op b" is already its moveKey.
 */
function legalMoves(state: readonly number[], tried: ReadonlySet<string>): string[] {
  const keys = new Set(moves(state.map((v) => ({ v, expr: "" }))).map((m) => m.line.slice(0, m.line.indexOf("="))));
  return [...keys].filter((k) => !tried.has(k)).map((k) => `${k}=`);
}

/** The words besides moves that the model writes in its reasoning (the tool writes results, states, verdicts). */
const WORDS = ["back", "give", "up", "check", "ok"];

/**
 * The calculator's referee, for one problem: whether the model may write `next` after `text`. Inside the
 * reasoning, each word the model writes is a move the solver could write from the state the search is in
 * ("a op b=", see moves), not yet written from that state, or back, give up, check, ok; in the final check, a move
 * over the numbers and results the check holds. Words are one space apart. Outside the reasoning, anything goes.
 * Reads one growing completion: the moves of each word are worked out once.
 */
export function legalMoveReferee(nums: readonly number[]): (text: string, next: string) => boolean {
  return referee(nums).allows;
}

/**
 * The referee (see legalMoveReferee) as `allows`, one token's verdict, and `legal`, every token of a vocabulary
 * at once (1 where allowed), which reads the text once and judges only the tokens that are pieces of legal words
 * (and the few with a space inside, a tag or ">").
 */
export function referee(nums: readonly number[]): {
  allows(text: string, next: string): boolean;
  legal(text: string, vocab: readonly string[]): Uint8Array;
} {
  const cache = new Map<string, string[]>();
  const movesAt = (full: string, think: number, at: number, textLen: number): string[] => {
    // the text before `at` grows by appending only, so `at` and the part of `next` before it name it
    const key = `${at}|${at > textLen ? full.slice(textLen, at) : ""}`;
    let legal = cache.get(key);
    if (legal) return legal;
    const before = full.slice(think + 7, at),
      check = before.lastIndexOf("check");
    if (check >= 0) legal = legalMoves(checkPool(before.slice(check), nums)?.map((x) => x.value) ?? [], new Set());
    else {
      const f = replay(before, nums);
      legal = legalMoves(f.state, f.tried);
    }
    if (cache.size > 64) cache.clear();
    cache.set(key, legal);
    return legal;
  };
  // next's verdict inside the reasoning: think is where "<think>" starts, last the text's last word
  const inside = (text: string, think: number, last: string, next: string): boolean => {
    if (next === "</think>") return true;
    if (next.includes("<") || (text.slice(-1) + next).includes("  ")) return false; // no other tag, no double space
    // a word ends only when complete: a move at its "=" (the tool then writes), one of WORDS, or the tool's text
    if (/[ >]/.test(next) && !wordDone(last)) return false;
    const full = text + next,
      at = Math.max(full.lastIndexOf(" "), full.lastIndexOf(">")) + 1,
      word = full.slice(at);
    if (word === "") return true;
    if (!/^\d/.test(word)) return WORDS.some((w) => w.startsWith(word));
    return movesAt(full, think, at, text.length).some((m) => m.startsWith(word));
  };
  const thinkAt = (text: string) => {
    const think = text.indexOf("<think>");
    return think < 0 || text.includes("</think>") ? -1 : think;
  };
  const lastWord = (text: string) => text.slice(Math.max(text.lastIndexOf(" "), text.lastIndexOf(">")) + 1);
  return {
    allows(text, next) {
      const think = thinkAt(text);
      return think < 0 || inside(text, think, lastWord(text), next);
    },
    legal(text, vocab) {
      const out = new Uint8Array(vocab.length),
        think = thinkAt(text);
      if (think < 0) return out.fill(1);
      const last = lastWord(text),
        { plain, other } = vocabIndexOf(vocab),
        judge = (v: number) => (out[v] = inside(text, think, last, vocab[v]!) ? 1 : 0);
      // a token without a space, "<" or ">" extends the last word: it is a piece of a legal word after `last`
      const here = [
        ...WORDS,
        ...(last === "" || /^\d/.test(last) ? movesAt(text, think, text.length, text.length) : []),
      ];
      for (const w of here) piecesOf(w, last, "", plain, judge);
      // one space then such text starts a word after a complete one
      if (!text.endsWith(" ") && wordDone(last))
        for (const w of [...WORDS, ...movesAt(text + " ", think, text.length + 1, text.length)])
          piecesOf(w, "", " ", plain, judge);
      other.forEach(judge);
      return out;
    },
  };
}

/** Whether the last word is complete, so a space may follow: empty, one of WORDS, or ending as the tool writes. */
const wordDone = (last: string) => last === "" || WORDS.includes(last) || /(=\d+|\)|yes|no)$/.test(last);

/** Calls judge on every token that is `lead` + a piece of `word` just after `last` (word must start with last). */
function piecesOf(word: string, last: string, lead: string, plain: Map<string, number[]>, judge: (v: number) => void) {
  if (word.length <= last.length || !word.startsWith(last)) return;
  for (let k = last.length + 1; k <= word.length; k++) plain.get(lead + word.slice(last.length, k))?.forEach(judge);
}

interface VocabIndex {
  plain: Map<string, number[]>;
  other: number[];
}
const vocabIndex = new WeakMap<readonly string[], VocabIndex>();

/**
 * A vocabulary's tokens by their text, those with no space, "<" or ">" past a leading space (plain: they extend
 * or start one word), and the others apart.
 */
function vocabIndexOf(vocab: readonly string[]): VocabIndex {
  let ix = vocabIndex.get(vocab);
  if (ix) return ix;
  ix = { plain: new Map(), other: [] };
  for (const [v, s] of vocab.entries()) {
    if (s !== "" && s !== " " && !/[ <>]/.test(s.slice(s[0] === " " ? 1 : 0))) {
      const list = ix.plain.get(s) ?? [];
      if (!list.length) ix.plain.set(s, list);
      list.push(v);
    } else ix.other.push(v);
  }
  vocabIndex.set(vocab, ix);
  return ix;
}
