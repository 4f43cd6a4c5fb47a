import { createHash } from "node:crypto";
import type { BucketSpec } from "../../state/store.js";
import type { RateLimitRule } from "../schema.js";

const UNIT_MS = { sec: 1000, min: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/**
 * Names each rate-limit rule of a policy by a hash of the rule itself (plus its occurrence, for
 * identical rules), so a bucket survives a policy reload that leaves its rule alone and every
 * host with the same rule shares one bucket per key.
 */
export function ruleIds(rules: readonly RateLimitRule[]): string[] {
  const seen = new Map<string, number>();
  return rules.map((r) => {
    const h = createHash("sha256")
      .update(JSON.stringify([r.match ?? null, r.per, r.limit, r.burst ?? null]))
      .digest("hex")
      .slice(0, 16);
    const n = seen.get(h) ?? 0;
    seen.set(h, n + 1);
    return `${h}.${n}`;
  });
}

/** The token bucket a rule gives a key: `burst` tokens (default N), refilled evenly at N per unit. */
export function bucketFor(ruleId: string, rule: RateLimitRule, key: string): BucketSpec {
  const [n, unit] = rule.limit.split("/") as [string, keyof typeof UNIT_MS];
  return { key: `${ruleId}|${key}`, capacity: rule.burst ?? Number(n), perMs: Number(n) / UNIT_MS[unit] };
}

export function bucketKey(per: RateLimitRule["per"], caller: string, skill: string): string {
  // JSON keeps a caller id that contains "+skill:" from naming another pair's bucket.
  return per === "caller" ? `caller:${caller}` : per === "skill" ? `skill:${skill}` : `caller+skill:${JSON.stringify([caller, skill])}`;
}
