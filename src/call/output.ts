import { PermissionDeniedError, type SkillError } from "../errors.js";
import type { CallLog } from "../execution/scope.js";
import type { LivePolicy } from "../policy/live.js";

/**
 * Stage 7, output: the policy's content filters on whatever produced the output (the skill or
 * its fallback): a masked value, or the refusal naming the filter that blocked it. (The size cap
 * and the output schema are enforced per attempt, in execution, so they can retry and fall back.)
 */
export function filterOutput(live: LivePolicy, name: string, output: unknown, log: CallLog): { ok: true; output: unknown } | { ok: false; error: SkillError; rule: string } {
  const f = live.engine.filter("output", output, log);
  if (!f.blocked) return { ok: true, output: f.value };
  const rule = `filters.${f.blocked}`;
  return { ok: false, rule, error: new PermissionDeniedError(`${name}: the output was blocked by content filter "${f.blocked}"`, { details: { rule, filter: f.blocked } }) };
}
