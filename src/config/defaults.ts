/**
 * Every default of a host, as data with no imports of its own, so the lowest layers (the sandbox
 * supervisor and its workers) read the same values as the options resolver above them.
 */
import { availableParallelism } from "node:os";

export const DEFAULTS = {
  skillsDir: "skills",
  policyFileName: "skillbox.policy.yaml",
  stateDir: ".skillbox",
  auditFile: ".skillbox/audit.jsonl",
  /** prepared isolates per skill and memory cap, and in all per worker */
  pool: { perSkill: 2, max: 8 },
  maxConcurrent: 64,
  maxQueued: 1024,
  maxInputBytes: 1024 * 1024,
  /** pending approval requests one caller / one skill may have at once */
  approvalCaps: { perCaller: 20, perSkill: 200 },
} as const;

/** Sandbox worker processes: one per core, at least 2 (one attempt runs per worker at a time). */
export function defaultWorkers(): number {
  return Math.max(2, availableParallelism());
}
