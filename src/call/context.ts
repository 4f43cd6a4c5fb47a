import type { AuditLog } from "../audit/log.js";
import type { Metrics } from "../audit/metrics.js";
import type { ExecutionEnv } from "../execution/scope.js";
import type { LivePolicy } from "../policy/live.js";
import type { SkillRegistry } from "../registry/registry.js";

/** What a call needs from the host that runs it (SkillHost provides it; tests may build one). */
export interface CallContext extends ExecutionEnv {
  registry: SkillRegistry;
  audit: AuditLog;
  counters: Metrics;
  maxInputBytes: number;
  /** the policy version in force now (a call keeps the one it started with) */
  live(): LivePolicy;
  /** whether the host is closed (a closed host refuses new calls) */
  closed(): boolean;
}
