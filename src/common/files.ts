// File helpers shared by every layer: atomic writes (temp file, fsync, rename) and the repository's root.
// Checkpoint directories have their own atomic swap (model/checkpoint.ts); this is the single-file form.
import { closeSync, fsyncSync, mkdtempSync, openSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FrugalError } from "./errors.js";

/** The repository (or installed package) root: dist/common/ and src/common/ both sit two levels below it. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** A fresh directory under the system's temp dir (tests, benchmarks). */
export function tempDir(prefix = "frugal-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes via a temp file + fsync + rename: a crash or a full disk leaves the previous file intact. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    const code = (e as NodeJS.ErrnoException).code;
    const full = code === "ENOSPC" ? ": the disk is full; free space and retry — the previous file is untouched" : "";
    throw new FrugalError("WRITE", `could not write ${file} (${code ?? (e as Error).message})${full}`, { cause: e });
  }
}
