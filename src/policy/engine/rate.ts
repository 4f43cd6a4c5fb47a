import type { RateLimitRule } from "../schema.js";

const UNIT_MS = { sec: 1000, min: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

export interface RateDecision {
  allowed: boolean;
  /** when refused: how long until one token is back */
  retryAfterMs: number;
}

/**
 * Token buckets, one per rule and key (caller, skill or both). A bucket holds `burst` tokens
 * (default N) and refills evenly at N per unit; a call takes one. Pure apart from the state it
 * keeps; time comes from the caller, so tests can put the clock at the edges.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  take(ruleIndex: number, rule: RateLimitRule, key: string, now: number): RateDecision {
    const [n, unit] = rule.limit.split("/") as [string, keyof typeof UNIT_MS];
    const perMs = Number(n) / UNIT_MS[unit];
    const capacity = rule.burst ?? Number(n);
    const id = `${ruleIndex}\0${key}`;
    const b = this.buckets.get(id) ?? { tokens: capacity, at: now };
    const tokens = Math.min(capacity, b.tokens + Math.max(0, now - b.at) * perMs);
    if (tokens >= 1 - 1e-9) {
      this.buckets.set(id, { tokens: tokens - 1, at: now });
      return { allowed: true, retryAfterMs: 0 };
    }
    this.buckets.set(id, { tokens, at: now });
    // Rounding noise (1 - 0.999 is not exactly 0.001) must not add a millisecond.
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil((1 - tokens) / perMs - 1e-6)) };
  }
}

export function bucketKey(per: RateLimitRule["per"], caller: string, skill: string): string {
  return per === "caller" ? `caller:${caller}` : per === "skill" ? `skill:${skill}` : `caller:${caller}+skill:${skill}`;
}
