// Helpers shared by tests only: where the committed fixtures live, temp dirs (removed when the test process
// exits, unless FRUGAL_KEEP_TEST_DIRS is set, to look at what a failing test left).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir as freshDir } from "./files.js";

export { repoRoot };
export const fixtures = join(repoRoot, "test/fixtures");

const made: string[] = [];
process.on("exit", () => {
  if (process.env.FRUGAL_KEEP_TEST_DIRS) return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = "frugal-test-"): string {
  const d = freshDir(prefix);
  made.push(d);
  return d;
}
