// Helpers shared by tests only: where the committed fixtures live, temp dirs.
import { join } from "node:path";
import { repoRoot, tempDir as freshDir } from "./files.js";

export { repoRoot };
export const fixtures = join(repoRoot, "test/fixtures");
export function tempDir(prefix = "frugal-test-"): string {
  return freshDir(prefix);
}
