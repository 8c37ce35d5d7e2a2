// The hand-written safety material, read from lists/*.json (zod-checked at load): question and request
// frames, jailbreak wrappers, benign look-alikes, harmful requests per hazard, contrast pairs, harm concepts,
// everyday tasks and the CSV's hazard rules. Every list is split by a hash of its entry into families used for
// training and families held out for evaluation. No CSV loading and no drawing here (corpus.ts draws).
import { z } from "zod";
import { fnv1a } from "../common/hash.js";
import { readShippedJson } from "../common/shipped.js";
import { internal } from "../common/errors.js";

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

const framesWith = (...keys: string[]) =>
  z.array(z.string().refine((f) => keys.every((k) => f.includes(`{${k}}`)), `a frame with {${keys.join("} and {")}}`));
const PrivacySchema = z
  .object({
    $comment: z.string(),
    /** questions with {who} and {fact} */
    frames: framesWith("who", "fact").min(1),
    privatePeople: strings,
    publicPeople: strings,
    /** facts private about anyone, a public figure too: asking for one is S7 */
    privateFacts: strings,
    /** facts public about a public figure */
    publicFacts: strings,
    /** institutions and landmarks, and their public contact details */
    places: strings,
    placeFacts: strings,
  })
  .strict();

const StereotypesSchema = z
  .object({
    $comment: z.string(),
    groups: strings,
    /** negative traits ("lazy"): asserting one of a group is S10 */
    traits: strings,
    stereotypeFrames: framesWith("group", "trait").min(1),
    /** questions about a stereotype that do not assert it (where it comes from, why it is wrong) */
    debunkFrames: framesWith("group", "trait").min(1),
    groupFrames: framesWith("group").min(1),
    ideologies: strings,
    /** asking how to promote an ideology of hate: S10 */
    promoteFrames: framesWith("ideology").min(1),
    /** asking what it is, its history, how to fight it */
    aboutFrames: framesWith("ideology").min(1),
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
const privacy = readShippedJson(new URL("../../src/safety/lists/privacy.json", import.meta.url), PrivacySchema);
const stereotypes = readShippedJson(
  new URL("../../src/safety/lists/stereotypes.json", import.meta.url),
  StereotypesSchema,
);
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

/** A list drawn from in both splits must have trained and held-out entries (a pick from an empty family fails). */
function bothFamilies<T extends { $comment: string }>(file: string, lists: T): Omit<T, "$comment"> {
  const { $comment: _, ...rest } = lists;
  for (const [k, xs] of Object.entries(rest) as [string, string[]][])
    if (!xs.some((x) => heldOut(x)) || xs.every((x) => heldOut(x)))
      throw internal(
        `lists/${file} "${k}" has no ${xs.some((x) => heldOut(x)) ? "trained" : "held-out"} entry; add some`,
      );
  return rest;
}

/** S7 privacy questions: a private fact about anyone is refused; a public figure's public facts are not. */
export const PRIVACY: Readonly<Omit<z.infer<typeof PrivacySchema>, "$comment">> = bothFamilies("privacy.json", privacy);

/** S10 as questions: a stereotype asserted or an ideology of hate promoted is refused; asking about one is not. */
export const STEREOTYPES: Readonly<Omit<z.infer<typeof StereotypesSchema>, "$comment">> = bothFamilies(
  "stereotypes.json",
  stereotypes,
);

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
