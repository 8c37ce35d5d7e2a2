// The hand-written safety material, read from lists/*.json (zod-checked at load): question and request
// frames, jailbreak wrappers, benign look-alikes, harmful requests per hazard, contrast pairs, harm concepts,
// everyday tasks and the CSV's hazard rules. Every list is split by a hash of its entry into families used for
// training and families held out for evaluation. No CSV loading and no drawing here (corpus.ts draws).
import { z } from "zod";
import { fnv1a } from "../common/hash.js";
import { readShippedJson } from "../common/shipped.js";

const strings = z.array(z.string().min(1)).min(1);
const hazard = z.string().regex(/^S\d+$/, "a hazard code S1 … S12");
const Composed = z.object({ prefix: z.array(z.string()), core: strings, suffix: z.array(z.string()) }).strict();
const Contrast = z
  .object({
    verb: z.string().min(1),
    benign: z.array(z.string().min(1)),
    /** harmful objects with their hazards */
    harmful: z.array(z.tuple([z.string().min(1), hazard])).optional(),
    /** or: every one of `people` (then `extra`) as the object, all of one hazard */
    harmfulPeople: z
      .object({ hazard, extra: z.array(z.string().min(1)) })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => !!c.harmful !== !!c.harmfulPeople, "a contrast entry has either harmful or harmfulPeople");

const PhrasesSchema = z
  .object({
    /** how-to frames: {x} is a verb phrase ("pick a lock") */
    howFrames: strings,
    /** request frames: {y} is a whole request in lower-case imperative, {Y} capitalised */
    askFrames: strings,
    /** role-play and instruction-override wrappers around a request {p} */
    wrappers: strings,
    /** dangerous-sounding words used for harmless things (verb phrases); never refused */
    lookalikes: strings,
    /** harmful requests as verb phrases, per hazard; always refused */
    harmful: z.record(hazard, strings),
    people: strings,
    /** one verb, harmless objects and harmful ones: the guard has to read the object, not the verb */
    contrast: z.array(Contrast).min(1),
    /** training-only frames composed afresh from one prefix, core and suffix */
    composedHow: Composed,
    composedAsk: Composed,
    /** whole benign questions that sound harmful (definitions, history, safe targets, games, help) */
    benignSentences: strings,
    /** whole harmful questions beyond how-to phrasing */
    harmfulSentences: z.array(z.object({ text: z.string().min(1), hazard }).strict()).min(1),
    /** frames around a task prompt {p} ("What is {p}?"): the guard must pass every task prompt */
    taskFrames: z.array(z.string().includes("{p}")).min(1),
  })
  .strict();

const ConceptsSchema = z
  .object({
    /** victims for {who} (none shared with the phrases' people) */
    who: strings,
    /** groups for {group} in hate requests */
    groups: strings,
    /** name: how people refer to the harm; acts: verb phrases for doing it ({who} / {group} filled in) */
    concepts: z.array(z.object({ hazard, name: z.string().min(1), acts: strings }).strict()).min(1),
    /** benign questions about a harm ({n} = its name) */
    aboutFrames: strings,
    /** everyday how-to tasks (benign verb phrases for the how-to frames) */
    everyday: strings,
  })
  .strict();

const HazardRulesSchema = z
  .object({
    about: z.string(),
    categories: z.record(z.string(), hazard),
    rules: z.array(z.object({ hazard, pattern: z.string().min(1) }).strict()).min(1),
  })
  .strict();

const phrases = readShippedJson(new URL("../../src/safety/lists/phrases.json", import.meta.url), PhrasesSchema);
const concepts = readShippedJson(new URL("../../src/safety/lists/concepts.json", import.meta.url), ConceptsSchema);
const hazardRules = readShippedJson(
  new URL("../../src/safety/lists/hazard-rules.json", import.meta.url),
  HazardRulesSchema,
);

export const HOW_FRAMES: readonly string[] = phrases.howFrames;
export const ASK_FRAMES: readonly string[] = phrases.askFrames;
export const WRAPPERS: readonly string[] = phrases.wrappers;
export const LOOKALIKES: readonly string[] = phrases.lookalikes;
export const HARMFUL: Readonly<Record<string, string[]>> = phrases.harmful;
export const BENIGN_SENTENCES: readonly string[] = phrases.benignSentences;
export const TASK_FRAMES: readonly string[] = phrases.taskFrames;
export const HARMFUL_SENTENCES: readonly [string, string][] = phrases.harmfulSentences.map((x) => [x.text, x.hazard]);

/** Every verb × object of the contrast pairs as a phrase with its truth. */
export const CONTRAST_PHRASES: readonly { phrase: string; unsafe: boolean; hazard: string | null }[] =
  phrases.contrast.flatMap((c) => {
    const harmful: [string, string][] =
      c.harmful ??
      [...phrases.people, ...c.harmfulPeople!.extra].map((o): [string, string] => [o, c.harmfulPeople!.hazard]);
    return [
      ...c.benign.map((o) => ({ phrase: `${c.verb} ${o}`, unsafe: false, hazard: null })),
      ...harmful.map(([o, h]) => ({ phrase: `${c.verb} ${o}`, unsafe: true, hazard: h })),
    ];
  });

export interface Concept {
  hazard: string;
  name: string;
  acts: string[];
}
export const WHO: readonly string[] = concepts.who;
export const GROUPS: readonly string[] = concepts.groups;
export const CONCEPTS: readonly Concept[] = concepts.concepts;
export const ABOUT_FRAMES: readonly string[] = concepts.aboutFrames;
export const EVERYDAY: readonly string[] = concepts.everyday;

/** The CSV's category names mapped to hazard codes, and the prompt rules tried in order. */
export const HAZARD_CATEGORIES: Readonly<Record<string, string>> = hazardRules.categories;
export const HAZARD_RULES: readonly [string, RegExp][] = hazardRules.rules.map((r) => [
  r.hazard,
  new RegExp(r.pattern, "i"),
]);

/** The acts of a concept with one victim or group filled in. */
export function fillAct(act: string, who: string, group: string): string {
  return act.replace("{who}", who).replace("{group}", group);
}

/** Every list entry whose FNV-1a hash % 5 === 0 is held out (test), the rest train. */
export const heldOut = (entry: string): boolean => fnv1a(entry) % 5 === 0;

const families = new WeakMap<readonly unknown[], { train: unknown[]; test: unknown[] }>();
/**
 * The held-out (test) or trained part of a constant list, keyed by key(x); computed once per list (draws are a hot
 * path).
 */
export function familyBy<T>(xs: readonly T[], key: (x: T) => string, test: boolean): T[] {
  let f = families.get(xs);
  if (!f)
    families.set(xs, (f = { train: xs.filter((x) => !heldOut(key(x))), test: xs.filter((x) => heldOut(key(x))) }));
  return (test ? f.test : f.train) as T[];
}
export function family<T extends string>(xs: readonly T[], test: boolean): T[] {
  return familyBy(xs, (x) => x, test);
}

/** A frame composed afresh from one prefix, core and suffix (training only), then lower-cased or capitalised. */
function compose(r: () => number, parts: z.infer<typeof Composed>): string {
  const pick = (xs: readonly string[]) => xs[Math.floor(r() * xs.length)]!;
  const f = pick(parts.prefix) + pick(parts.core) + pick(parts.suffix);
  return r() < 0.3 ? f.toLowerCase() : f.charAt(0).toUpperCase() + f.slice(1);
}

/** A freshly composed how-to frame ({x} = a verb phrase). */
export const composedFrame = (r: () => number): string => compose(r, phrases.composedHow);

/** A freshly composed request frame ({y} = a whole request). */
export const composedAskFrame = (r: () => number): string => compose(r, phrases.composedAsk);
