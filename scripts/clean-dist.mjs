// Removes dist/ before a test build, so tests of deleted or moved sources cannot linger and run.
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

rmSync(join(dirname(fileURLToPath(import.meta.url)), "../dist"), { recursive: true, force: true });
