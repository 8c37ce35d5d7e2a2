// Helpers shared by tests only: where the committed fixtures and the shared data live, temp dirs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const repoRoot = root;
export const fixtures = join(root, "test/fixtures");
export function tempDir(prefix = "frugal-test-"): string { return mkdtempSync(join(tmpdir(), prefix)); }
