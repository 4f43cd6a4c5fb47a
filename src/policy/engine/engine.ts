import { SkillError } from "../../errors.js";
import type { LoadedSkill } from "../../manifest/load.js";
import { verifySkillSignature, type SignatureCheck } from "../../manifest/signing.js";
import type { Policy } from "../load.js";
import { ApprovalStore, inputDigest } from "./approvals.js";
import { applyFilters, applyRequestFilters, compileFilters, type FilterResult, type FilterStage, type OutgoingRequest, type RequestFilterResult } from "./filters.js";
import { describeMatch, matches, type CallSubject } from "./match.js";
import { bucketKey, RateLimiter } from "./rate.js";
import { windowRefusal, windowAllows } from "./windows.js";

export interface EngineOptions {
  /** where approvals live; @default "<workspace>/.skillbox" */
  stateDir: string;
  /** epoch milliseconds; injectable so tests can stand at the edges of windows and buckets */
  clock: () => number;
}

/** Writes a policy event for one call to the security log. */
export type EngineLog = (event: string, fields: Record<string, unknown>, level?: "info" | "warn") => void;

export type Admission = { ok: true; input: unknown; release: () => void } | { ok: false; error: SkillError; rule: string };

/**
 * Stage 4 of a call, after authorize and before any isolate: signatures, time windows,
 * concurrency, rate limits, input filters and approvals, in that order. Also filters output and
 * ctx.fetch request bodies. One engine per policy version.
 */
export class PolicyEngine {
  readonly approvals: ApprovalStore;
  private readonly rate = new RateLimiter();
  private readonly perCaller = new Map<string, number>();
  private readonly filters;
  private readonly signatures = new WeakMap<LoadedSkill, SignatureCheck>();

  constructor(
    readonly policy: Policy,
    private readonly options: EngineOptions,
  ) {
    this.approvals = new ApprovalStore(options.stateDir, options.clock);
    this.filters = compileFilters(policy.rules.filters.presets, policy.rules.filters.rules);
  }

  /** Whether a skill's signature satisfies the policy for a trust level (always true where none is required). */
  signatureFor(skill: LoadedSkill, trust: CallSubject["trust"]): SignatureCheck | undefined {
    const signing = this.policy.rules.signing;
    if (!signing || !signing.require.includes(trust)) return undefined;
    let check = this.signatures.get(skill);
    if (!check) {
      const secret = signing.hmacKeyEnv ? process.env[signing.hmacKeyEnv] : undefined;
      check = verifySkillSignature(skill, signing.keys, secret);
      this.signatures.set(skill, check);
    }
    return check;
  }

  admit(subject: CallSubject, skill: LoadedSkill, input: unknown, log: EngineLog): Admission {
    const r = this.policy.rules;
    const now = this.options.clock();
    const refuse = (error: SkillError, rule: string): Admission => ({ ok: false, error, rule });

    const sig = this.signatureFor(skill, subject.trust);
    if (sig && !sig.valid) {
      return refuse(new SkillError("E_INTEGRITY", `${subject.skill} must be signed by a trusted key for trust level "${subject.trust}": ${sig.reason}`, { details: { rule: "signing" } }), "signing");
    }

    for (const [i, w] of r.windows.entries()) {
      if (matches(w.match, subject) && !windowAllows(w, now)) {
        return refuse(new SkillError("E_PERMISSION_DENIED", `${subject.skill} may not run now: ${windowRefusal(w, i)}`, { details: { rule: `windows[${i}]`, window: w.name ?? null } }), `windows[${i}]`);
      }
    }

    const limit = r.concurrency?.perCaller;
    const running = this.perCaller.get(subject.caller) ?? 0;
    if (limit !== undefined && running >= limit) {
      return refuse(new SkillError("E_RATE_LIMITED", `caller ${subject.caller} already has ${running} calls in flight (concurrency.perCaller: ${limit})`, { details: { retryAfterMs: 250, rule: "concurrency.perCaller" } }), "concurrency.perCaller");
    }

    for (const [i, rule] of r.rateLimits.entries()) {
      if (!matches(rule.match, subject)) continue;
      const d = this.rate.take(i, rule, bucketKey(rule.per, subject.caller, subject.skill), now);
      if (!d.allowed) {
        return refuse(
          new SkillError("E_RATE_LIMITED", `rate limit rateLimits[${i}] (${rule.limit} per ${rule.per}, ${describeMatch(rule.match)}) reached; try again in ${d.retryAfterMs} ms`, { details: { retryAfterMs: d.retryAfterMs, rule: `rateLimits[${i}]` } }),
          `rateLimits[${i}]`,
        );
      }
    }

    const filtered = this.filter("input", input, log);
    if (filtered.blocked) {
      return refuse(new SkillError("E_PERMISSION_DENIED", `${subject.skill}: the input was blocked by content filter "${filtered.blocked}"`, { details: { rule: `filters.${filtered.blocked}`, filter: filtered.blocked } }), `filters.${filtered.blocked}`);
    }

    for (const [i, rule] of r.approvals.entries()) {
      if (!matches(rule.match, subject)) continue;
      const ruleName = rule.name ?? `approvals[${i}]`;
      const a = this.approvals.check(rule, ruleName, subject.skill, subject.caller, inputDigest(input));
      if (a.kind === "pending") {
        if (a.created) log("approval.requested", { approvalId: a.approval.id, rule: ruleName, inputDigest: a.approval.inputDigest, expiresAt: a.approval.expiresAt });
        return refuse(
          new SkillError("E_APPROVAL_REQUIRED", `${subject.skill} needs approval (${ruleName}): ask an operator to run \`skillbox approvals approve ${a.approval.id}\`, then call again with the same input`, { details: { approvalId: a.approval.id, expiresAt: a.approval.expiresAt, rule: ruleName } }),
          ruleName,
        );
      }
      if (a.kind === "denied") {
        return refuse(new SkillError("E_PERMISSION_DENIED", `${subject.skill}: approval ${a.approval.id} was denied${a.approval.reason ? `: ${a.approval.reason}` : ""}`, { details: { approvalId: a.approval.id, rule: ruleName } }), ruleName);
      }
      log("approval.used", { approvalId: a.approval.id, rule: ruleName, mode: a.approval.mode });
    }

    this.perCaller.set(subject.caller, running + 1);
    let released = false;
    return {
      ok: true,
      input: filtered.value,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.perCaller.get(subject.caller) ?? 1) - 1;
        if (n <= 0) this.perCaller.delete(subject.caller);
        else this.perCaller.set(subject.caller, n);
      },
    };
  }

  /** The request filters over a ctx.fetch request, raw and decoded; logs each hit like `filter`. */
  filterRequest(request: OutgoingRequest, log: EngineLog): RequestFilterResult {
    const res = applyRequestFilters(this.filters, request);
    for (const h of res.hits) log("filter.match", { filter: h.filter, stage: "request", action: h.action }, h.action === "log" ? "info" : "warn");
    return res;
  }

  /** Applies the content filters of one stage; logs each hit (filter and action, never the text). */
  filter(stage: FilterStage, value: unknown, log: EngineLog): FilterResult {
    const res = applyFilters(this.filters, stage, value);
    for (const h of res.hits) log("filter.match", { filter: h.filter, stage, action: h.action }, h.action === "log" ? "info" : "warn");
    return res;
  }
}
