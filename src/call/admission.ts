import type { LoadedSkill } from "../manifest/model.js";
import type { Admission } from "../policy/engine/engine.js";
import type { LivePolicy } from "../policy/live.js";
import type { CallLog } from "../execution/scope.js";
import type { Caller } from "./caller.js";

/**
 * Stage 4, admission: the policy engine's rules over state — signatures, time windows, per-caller
 * concurrency, rate limits, input filters, approvals, in that order. An admitted call holds what
 * it was admitted with (a per-caller lease) until `release()`; its input may come back masked.
 */
export function admit(live: LivePolicy, skill: LoadedSkill, caller: Caller, input: unknown, log: CallLog): Promise<Admission> {
  return live.engine.admit({ skill: skill.manifest.name, caller: caller.id, trust: caller.trust, manifest: skill.manifest }, skill, input, log);
}
