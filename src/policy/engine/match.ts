import type { Manifest } from "../../manifest/schema.js";
import type { MatchRule } from "../schema.js";
import type { TrustLevel } from "../trust.js";

/** What a rule's `match` is compared with. */
export interface CallSubject {
  skill: string;
  caller: string;
  trust: TrustLevel;
  manifest: Manifest;
}

const list = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

/** Pure: does this rule apply to this call? No `match`: every call. */
export function matches(match: MatchRule | undefined, s: CallSubject): boolean {
  if (!match) return true;
  const skill = list(match.skill);
  if (skill && !skill.includes(s.skill)) return false;
  const caller = list(match.caller);
  if (caller && !caller.includes(s.caller)) return false;
  const trust = list(match.trust);
  if (trust && !trust.includes(s.trust)) return false;
  const kinds = list(match.permission);
  if (kinds && !kinds.some((k) => s.manifest.permissions[k].length > 0)) return false;
  const access = list(match.access);
  if (access && !access.some((a) => s.manifest.permissions.files.some((f) => f.access.includes(a)))) return false;
  return true;
}

/** A short description of a rule's scope, for messages: "skill deploy, trust untrusted". */
export function describeMatch(match: MatchRule | undefined): string {
  if (!match) return "every call";
  return Object.entries(match)
    .map(([k, v]) => `${k} ${list(v as string | string[])!.join("|")}`)
    .join(", ");
}
