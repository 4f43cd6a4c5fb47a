import { createHash } from "node:crypto";
import { ValidationError } from "../errors.js";
import type { LoadedSkill } from "../manifest/load.js";
import type { AuthorizeResult } from "./authorize.js";
import type { PolicyVersion, StateStore } from "../state/store.js";
import type { ApprovalCaps } from "./engine/approvals.js";
import { PolicyEngine } from "./engine/engine.js";
import { describeExpect, runExpectations } from "./engine/selftest.js";
import type { Policy } from "./load.js";

/** A policy version in force: the policy, its engine (buckets, approvals, filters) and its grants. */
export interface LivePolicy {
  policy: Policy;
  engine: PolicyEngine;
  /** authorize() results by `${skill}\0${trust}`; dropped when a skill changes */
  grants: Map<string, AuthorizeResult>;
}

export interface LiveOptions {
  state: StateStore;
  clock: () => number;
  secret: (name: string) => string | undefined;
  approvalCaps?: ApprovalCaps;
}

export function makeLive(policy: Policy, options: LiveOptions): LivePolicy {
  return { policy, engine: new PolicyEngine(policy, options), grants: new Map() };
}

/**
 * Runs the policy's `expect:` cases; a failing one refuses the policy (E_POLICY_INVALID, one
 * issue per case). A case about a skill that is not registered is skipped and reported.
 */
export function selfTest(policy: Policy, skill: (name: string) => LoadedSkill | undefined, vars: { workspace: string; home: string }, warn: (m: string) => void = () => undefined): void {
  const results = runExpectations(policy, skill, vars);
  const skipped = results.filter((r) => r.skipped);
  if (skipped.length > 0) warn(`skillbox: ${policy.source}: ${skipped.length} self-test case(s) skipped: ${skipped.map((r) => `expect[${r.index}] (${r.why})`).join(", ")}`);
  const failed = results.filter((r) => !r.ok && !r.skipped);
  if (failed.length > 0) {
    throw new ValidationError(
      "E_POLICY_INVALID",
      failed.map((r) => ({ file: policy.source, field: `expect[${r.index}]`, message: `self-test failed: ${describeExpect(r)}` })),
    );
  }
}

/** The record of a policy version for the state store (`policy versions`, `policy diff`); undefined for the built-in one. */
export function versionRecord(policy: Policy, loadedAtMs: number, loadedBy: string): PolicyVersion | undefined {
  if (!policy.text) return undefined;
  const at = policy.version.lastIndexOf("@");
  return {
    version: policy.version,
    label: at > 0 ? policy.version.slice(0, at) : null,
    hash: createHash("sha256").update(policy.text).digest("hex"),
    document: policy.text,
    loadedAt: new Date(loadedAtMs).toISOString(),
    loadedBy,
    source: policy.source,
  };
}
