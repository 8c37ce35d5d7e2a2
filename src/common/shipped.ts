// Data files shipped with frugal's sources (policy.json, probe.json): read once by their caller, checked
// against a zod schema. They are not user input, so a mismatch is frugal's own bug (internal()).
// No caching and no user-facing file handling here (recipes and price tables have their own errors).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { internal } from "./errors.js";

/** The parsed, validated contents of a shipped JSON file (`url` as `new URL(relative, import.meta.url)`). */
export function readShippedJson<S extends z.ZodType>(url: URL, schema: S): z.infer<S> {
  const file = fileURLToPath(url),
    p = schema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!p.success) throw internal(`${file} does not match its schema: ${p.error.issues[0]?.message}`);
  return p.data;
}
