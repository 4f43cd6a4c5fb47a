/**
 * The policy's data types, and nothing else: the pure checks (authorize, check, network,
 * process), the loader, the engine and the capabilities all speak these, so no module has to
 * import another's implementation just to name a type (that is what made the import cycles).
 */
import type { FileRule, NetworkRule, ProcessRule } from "../manifest/schema.js";
import type { ApprovalRule, ExpectCase, FilterRule, RateLimitRule, SigningRules, WindowRule } from "./schema.js";
import type { CompiledFileRule } from "./match.js";
import type { ControlPlane } from "./control-plane.js";
import type { PathVars } from "../util/vars.js";

/** How processes started by skills are confined: bubblewrap where it works (auto), always (required), never (off). */
export type SandboxMode = "auto" | "required" | "off";

/** Trust levels, lowest first (the runtime list is TRUST_LEVELS in trust.ts). */
export type TrustLevel = "untrusted" | "user-verified" | "trusted" | "system";

export interface CeilingLimits {
  memoryMb: number;
  timeoutMs: number;
  outputBytes: number;
}

/** What one trust level may be granted at most (same shape as a manifest's permissions + limits). */
export interface Ceiling {
  files: FileRule[];
  network: NetworkRule[];
  process: ProcessRule[];
  limits: CeilingLimits;
}

/** The policy in force: a ceiling per level, global deny rules, where it came from. */
export interface Policy {
  source: string;
  /** content hash (first 12 hex digits) plus the optional `version:` label */
  version: string;
  ceilings: Record<TrustLevel, Ceiling>;
  deny: { files: string[]; network: string[] };
  binPath: string[];
  /** how processes started by skills are confined */
  process: { sandbox: SandboxMode };
  /** anchor and signingKey are absolute paths (resolved against the policy file's folder) */
  audit: { failMode: "open" | "closed"; redact: string[]; anchor?: string; signingKey?: string; checkpointEvery?: number };
  /** the policy engine's rules (every section optional) */
  rules: {
    rateLimits: RateLimitRule[];
    concurrency: { perCaller: number } | undefined;
    windows: WindowRule[];
    filters: { presets: string[]; rules: FilterRule[] };
    approvals: ApprovalRule[];
    signing: SigningRules | undefined;
    expect: ExpectCase[];
  };
  /** the file's text, for snapshots and diffs ("" for the built-in policy) */
  text: string;
}

/** One need of a manifest that the caller's trust level does not cover. */
export interface UncoveredNeed {
  kind: "files" | "network" | "process" | "limits";
  /** the need as declared, e.g. "${workspace}/notes/**" or "api.example.com" */
  target: string;
  access?: string;
  /** why it is not covered, naming the deny rule or the missing ceiling rule */
  reason: string;
}

/** Effective permissions of one skill for one trust level: declared ∩ ceiling − deny, compiled. */
export interface Grant {
  skill: string;
  trust: TrustLevel;
  policyVersion: string;
  files: CompiledFileRule[];
  ceilingFiles: CompiledFileRule[];
  denyFiles: { pattern: string; test: (p: string) => boolean }[];
  network: NetworkRule[];
  ceilingNetwork: NetworkRule[];
  denyNetwork: string[];
  process: ProcessRule[];
  ceilingProcess: ProcessRule[];
  binPath: string[];
  limits: CeilingLimits;
  /** how the processes this grant allows are confined (the policy's process.sandbox) */
  sandbox: SandboxMode;
  /** paths no skill may change (or, for some, see), cut out of every access this grant allows */
  controlPlane: ControlPlane;
  /** values of ${workspace}, ${home}, ${skill} for patterns expanded at check time (process arguments) */
  vars: PathVars;
}

export type AuthorizeResult = { ok: true; grant: Grant } | { ok: false; needs: UncoveredNeed[] };

/** A decision on one access; `rule` names what decided it, and is what the log records. */
export type Decision = { allowed: true; rule: string } | { allowed: false; rule: string; reason: string };
