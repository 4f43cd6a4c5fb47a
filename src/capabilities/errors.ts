import type { Decision } from "../policy/model.js";

/** An access outside the grant: ends the call with E_PERMISSION_DENIED (never retried, no fallback). */
export class PermissionDenied extends Error {
  override readonly name = "PermissionDenied";
  constructor(
    readonly op: string,
    readonly target: string,
    readonly decision: Extract<Decision, { allowed: false }>,
  ) {
    super(`${op} ${target} refused: ${decision.reason} (rule: ${decision.rule})`);
  }
}

/** A capability that failed for an ordinary reason (missing file, bad argument, transient I/O). The skill may catch it. */
export class CapabilityFailure extends Error {
  override readonly name = "CapabilityFailure";
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}
