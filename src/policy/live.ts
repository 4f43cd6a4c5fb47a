import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "../errors.js";
import type { LoadedSkill } from "../manifest/load.js";
import type { AuthorizeResult } from "./authorize.js";
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

export function makeLive(policy: Policy, stateDir: string, clock: () => number): LivePolicy {
  return { policy, engine: new PolicyEngine(policy, { stateDir, clock }), grants: new Map() };
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

/** Keeps a copy of every policy version loaded, as `<state>/policies/<version>.yaml`, for `policy diff`. */
export function snapshotPolicy(policy: Policy, stateDir: string): string | undefined {
  if (!policy.text) return undefined;
  const dir = join(stateDir, "policies");
  const file = join(dir, `${policy.version.replace(/[^A-Za-z0-9@._-]/g, "_")}.yaml`);
  try {
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, policy.text, { mode: 0o600 });
    }
    return file;
  } catch {
    return undefined;
  }
}
