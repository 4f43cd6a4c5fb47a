import { createHash } from "node:crypto";
import type { ApprovalRequest } from "../../state/store.js";
import { parseDuration } from "../../util/duration.js";
import type { ApprovalRule } from "../schema.js";

/** Deeper input is refused before it gets here; the digest still never recurses past this. */
const MAX_DIGEST_DEPTH = 64;

export class DigestDepthError extends Error {}

/** SHA-256 of the input as canonical JSON (keys sorted), so equal inputs match. Throws DigestDepthError past 64 levels. */
export function inputDigest(input: unknown): string {
  const canon = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (depth >= MAX_DIGEST_DEPTH) throw new DigestDepthError(`input nested deeper than ${MAX_DIGEST_DEPTH} levels`);
    if (Array.isArray(v)) return v.map((x) => canon(x, depth + 1));
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canon((v as Record<string, unknown>)[k], depth + 1)]),
    );
  };
  return createHash("sha256")
    .update(JSON.stringify(canon(input, 0)))
    .digest("hex");
}

/** Pending approval requests one caller, and one skill, may have at once. */
export interface ApprovalCaps {
  perCaller: number;
  perSkill: number;
}

export const DEFAULT_APPROVAL_CAPS: ApprovalCaps = { perCaller: 20, perSkill: 200 };

export function approvalRequest(rule: ApprovalRule, ruleName: string, skill: string, caller: string, digest: string, input: unknown, caps: ApprovalCaps): ApprovalRequest {
  return {
    rule: ruleName,
    mode: rule.mode,
    expiresInMs: parseDuration(rule.expiresIn),
    skill,
    caller,
    inputDigest: digest,
    input,
    maxPendingPerCaller: caps.perCaller,
    maxPendingPerSkill: caps.perSkill,
  };
}
