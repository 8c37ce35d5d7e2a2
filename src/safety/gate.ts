// The gate: the one refuse-or-answer decision of a Safe model as served and as evaluated. The policy's own
// decision right after <think>; with a guard, either steered (margin + the guard's log-odds over the
// model's tuned threshold, steering.json) or the plain union (the policy refuses or the guard flags). serve,
// the safety report and labelled evaluation all call this. The decision's maths lives in steer.ts.
import { internal } from "../common/errors.js";
import type { Model } from "../model/transformer.js";
import { promptIds } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { SafetyItem } from "./corpus.js";
import type { SafetyJudge } from "./guard.js";
import {
  decisionsOfIds,
  decisionTokens,
  guardedRefusals,
  guardScores,
  type PolicyDecisions,
  type Steering,
} from "./steer.js";

/** How a served prompt goes on: its ids (with the forced decision tokens when steering picked them). */
export interface GatedPrompt {
  ids: number[];
  /** text of the forced decision tokens ("" when none) */
  forced: string;
  forcedN: number;
  /** the guard's plain rule applies: a flagged prompt is answered with the refusal */
  block: boolean;
}

export class Gate {
  constructor(
    readonly model: Model,
    readonly tok: Tokenizer,
    readonly guard?: SafetyJudge,
    readonly steering: Steering | null = null,
  ) {}

  /** "steered", "union", or null without a guard. */
  get rule(): "steered" | "union" | null {
    return !this.guard ? null : this.steering ? "steered" : "union";
  }

  /**
   * Whether the guarded decision refuses each item, from the policy's decisions on them; `scores` are the guard's
   * on the same items when the caller already has them (one guard pass instead of two).
   */
  refusals(
    items: readonly Pick<SafetyItem, "text">[],
    d: Pick<PolicyDecisions, "margin" | "deciding">,
    scores?: { lo: number[]; flagged: boolean[] },
  ): boolean[] {
    if (!this.guard)
      throw internal("Gate.refusals without a guard: the policy's own refusals are read from its replies");
    const g =
      scores ??
      guardScores(
        this.guard,
        items.map((x) => x.text),
      );
    return guardedRefusals(d, g, this.steering);
  }

  /**
   * A served prompt. Steered: the refuse-or-not token after <think> is chosen by margin + guard log-odds
   * (appended to the ids; the policy writes the rest, its own refusal included), and left to the policy when
   * both agree with it. Plain guard: a flagged prompt is blocked with the refusal. `steerable` is false when
   * max_tokens leaves no room for the decision and a reply.
   */
  prompt(text: string, steerable: boolean): GatedPrompt {
    const tok = this.tok,
      ids = promptIds(tok, text),
      plain = { ids, forced: "", forcedN: 0 };
    const room = ids.length + 2 < this.model.config.max_position_embeddings;
    if (!this.guard || !this.steering || !steerable || !room) return { ...plain, block: !!this.guard };
    const { think, refuse, answer } = decisionTokens(tok),
      d = decisionsOfIds(this.model, tok, [ids]),
      m = d.margin[0]!;
    if (!d.deciding[0]) return { ...plain, block: true }; // not a refuse-or-not choice (a task prompt): the guard alone
    const steered = this.refusals([{ text }], d)[0]!;
    const pick = steered === m > 0 ? null : steered ? refuse : answer;
    if (pick === null) return { ...plain, block: false };
    return { ids: [...ids, think, pick], forced: tok.decode([think, pick]), forcedN: 2, block: false };
  }
}
