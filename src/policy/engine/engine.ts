import { SkillError } from "../../errors.js";
import type { LoadedSkill } from "../../manifest/load.js";
import { verifySkillSignature, type SignatureCheck } from "../../manifest/signing.js";
import type { StateStore } from "../../state/store.js";
import type { Policy } from "../load.js";
import { approvalRequest, DEFAULT_APPROVAL_CAPS, DigestDepthError, inputDigest, type ApprovalCaps } from "./approvals.js";
import { applyFilters, applyRequestFilters, compileFilters, type FilterResult, type FilterStage, type OutgoingRequest, type RequestFilterResult } from "./filters.js";
import { describeMatch, matches, type CallSubject } from "./match.js";
import { bucketFor, bucketKey, ruleIds } from "./rate.js";
import { windowAllows, windowRefusal } from "./windows.js";

export interface EngineOptions {
  /** buckets, concurrency leases and approvals, shared with every process using the same store */
  state: StateStore;
  /** epoch milliseconds; injectable so tests can stand at the edges of windows and buckets */
  clock: () => number;
  /** the value of a named secret (policy `signing.hmacKeyEnv`); the host reads the environment, not the engine */
  secret: (name: string) => string | undefined;
  /** @default 20 per caller, 200 per skill */
  approvalCaps?: ApprovalCaps;
}

/** Writes a policy event for one call to the security log. */
export type EngineLog = (event: string, fields: Record<string, unknown>, level?: "info" | "warn") => void;

export type Admission = { ok: true; input: unknown; release: () => Promise<void> } | { ok: false; error: SkillError; rule: string };

const noRelease = async (): Promise<void> => undefined;

/**
 * Stage 4 of a call, after authorize and before any isolate: signatures, time windows,
 * concurrency, rate limits, input filters and approvals, in that order. Also filters output and
 * ctx.fetch request bodies. One engine per policy version.
 */
export class PolicyEngine {
  private readonly filters;
  private readonly rateIds: string[];
  private readonly signatures = new WeakMap<LoadedSkill, SignatureCheck>();

  constructor(
    readonly policy: Policy,
    private readonly options: EngineOptions,
  ) {
    this.rateIds = ruleIds(policy.rules.rateLimits);
    this.filters = compileFilters(policy.rules.filters.presets, policy.rules.filters.rules);
  }

  /** Whether a skill's signature satisfies the policy for a trust level (always true where none is required). */
  signatureFor(skill: LoadedSkill, trust: CallSubject["trust"]): SignatureCheck | undefined {
    const signing = this.policy.rules.signing;
    if (!signing?.require.includes(trust)) return undefined;
    let check = this.signatures.get(skill);
    if (!check) {
      const secret = signing.hmacKeyEnv ? this.options.secret(signing.hmacKeyEnv) : undefined;
      check = verifySkillSignature(skill, signing.keys, secret);
      this.signatures.set(skill, check);
    }
    return check;
  }

  /**
   * Admits a call or says why not. The shared state is touched only by the rules that match; a
   * store that cannot be reached refuses the call (fail closed) rather than skipping the rule.
   */
  async admit(subject: CallSubject, skill: LoadedSkill, input: unknown, log: EngineLog): Promise<Admission> {
    const r = this.policy.rules;
    const now = Math.round(this.options.clock());
    const refuse = (error: SkillError, rule: string): Admission => ({ ok: false, error, rule });

    const sig = this.signatureFor(skill, subject.trust);
    if (sig && !sig.valid) {
      return refuse(new SkillError("E_INTEGRITY", `${subject.skill} must be signed by a trusted key for trust level "${subject.trust}": ${sig.reason}`, { details: { rule: "signing" } }), "signing");
    }

    for (const [i, w] of r.windows.entries()) {
      if (matches(w.match, subject) && !windowAllows(w, now)) {
        return refuse(
          new SkillError("E_PERMISSION_DENIED", `${subject.skill} may not run now: ${windowRefusal(w, i)}`, { details: { rule: `windows[${i}]`, window: w.name ?? null } }),
          `windows[${i}]`,
        );
      }
    }

    let release = noRelease;
    let stage = "concurrency.perCaller";
    try {
      const limit = r.concurrency?.perCaller;
      if (limit !== undefined) {
        const lease = await this.options.state.acquireLease(subject.caller, limit);
        if (!lease.ok) {
          return refuse(
            new SkillError("E_RATE_LIMITED", `caller ${subject.caller} already has ${lease.running} calls in flight (concurrency.perCaller: ${limit})`, {
              details: { retryAfterMs: 250, rule: "concurrency.perCaller" },
            }),
            "concurrency.perCaller",
          );
        }
        release = lease.release;
      }
      const refused = await this.admitRest(subject, input, now, log, (s) => (stage = s));
      if (refused.ok) return { ...refused, release };
      await release();
      return refused;
    } catch (err) {
      await release().catch(() => undefined);
      if (err instanceof DigestDepthError) return refuse(new SkillError("E_INPUT_INVALID", `${subject.skill}: ${err.message}`), stage);
      log("state.error", { stage, message: (err as Error).message }, "warn");
      return refuse(
        new SkillError("E_RATE_LIMITED", `${subject.skill}: refused because the shared state (${this.options.state.location}) could not be reached to check ${stage}: ${(err as Error).message}`, {
          details: { retryAfterMs: 1000, rule: stage, reason: "state-unavailable" },
        }),
        stage,
      );
    }
  }

  /** Rate limits, input filters and approvals, after the concurrency lease. */
  private async admitRest(subject: CallSubject, input: unknown, now: number, log: EngineLog, at: (stage: string) => void): Promise<Admission> {
    const r = this.policy.rules;
    const refuse = (error: SkillError, rule: string): Admission => ({ ok: false, error, rule });
    for (const [i, rule] of r.rateLimits.entries()) {
      if (!matches(rule.match, subject)) continue;
      at(`rateLimits[${i}]`);
      const d = await this.options.state.takeToken(bucketFor(this.rateIds[i]!, rule, bucketKey(rule.per, subject.caller, subject.skill)), now);
      if (!d.allowed) {
        return refuse(
          new SkillError("E_RATE_LIMITED", `rate limit rateLimits[${i}] (${rule.limit} per ${rule.per}, ${describeMatch(rule.match)}) reached; try again in ${d.retryAfterMs} ms`, {
            details: { retryAfterMs: d.retryAfterMs, rule: `rateLimits[${i}]` },
          }),
          `rateLimits[${i}]`,
        );
      }
    }

    const filtered = this.filter("input", input, log);
    if (filtered.blocked) {
      return refuse(
        new SkillError("E_PERMISSION_DENIED", `${subject.skill}: the input was blocked by content filter "${filtered.blocked}"`, {
          details: { rule: `filters.${filtered.blocked}`, filter: filtered.blocked },
        }),
        `filters.${filtered.blocked}`,
      );
    }

    let digest: string | undefined;
    for (const [i, rule] of r.approvals.entries()) {
      if (!matches(rule.match, subject)) continue;
      const ruleName = rule.name ?? `approvals[${i}]`;
      at(ruleName);
      digest ??= inputDigest(input);
      // The operator sees the input as the filters left it: redacted, never the raw secret.
      const a = await this.options.state.checkApproval(approvalRequest(rule, ruleName, subject.skill, subject.caller, digest, filtered.value, this.options.approvalCaps ?? DEFAULT_APPROVAL_CAPS), now);
      if (a.kind === "full") {
        return refuse(
          new SkillError(
            "E_RATE_LIMITED",
            `${subject.skill} needs approval (${ruleName}), but ${a.per === "caller" ? `caller ${subject.caller}` : `skill ${subject.skill}`} already has ${a.pending} approval requests pending (at most ${a.max}); wait until an operator decides them or they lapse`,
            {
              details: { retryAfterMs: a.retryAfterMs, rule: ruleName, reason: `approvals-pending-per-${a.per}`, pending: a.pending, max: a.max },
            },
          ),
          ruleName,
        );
      }
      if (a.kind === "pending") {
        if (a.created) log("approval.requested", { approvalId: a.approval.id, rule: ruleName, inputDigest: a.approval.inputDigest, expiresAt: a.approval.expiresAt });
        return refuse(
          new SkillError(
            "E_APPROVAL_REQUIRED",
            `${subject.skill} needs approval (${ruleName}): ask an operator to run \`skillbox approvals approve ${a.approval.id}\`, then call again with the same input`,
            { details: { approvalId: a.approval.id, expiresAt: a.approval.expiresAt, rule: ruleName } },
          ),
          ruleName,
        );
      }
      if (a.kind === "denied") {
        return refuse(
          new SkillError("E_PERMISSION_DENIED", `${subject.skill}: approval ${a.approval.id} was denied${a.approval.reason ? `: ${a.approval.reason}` : ""}`, {
            details: { approvalId: a.approval.id, rule: ruleName },
          }),
          ruleName,
        );
      }
      log("approval.used", { approvalId: a.approval.id, rule: ruleName, mode: a.approval.mode });
    }
    return { ok: true, input: filtered.value, release: noRelease };
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
