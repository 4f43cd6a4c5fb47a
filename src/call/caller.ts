import { isTrustLevel, type TrustLevel } from "../policy/trust.js";

export interface Caller {
  id: string;
  trust: TrustLevel;
  session?: string;
}

export interface CallOptions {
  /**
   * Who asks. `trust` is checked at run time: a string that is not a trust level refuses the
   * call with E_INPUT_INVALID (so plain strings from a request or a config are accepted here).
   * @default { id: "anonymous", trust: "untrusted" }
   */
  caller?: { id?: string; trust?: TrustLevel | (string & {}); session?: string };
  /**
   * Aborting it cancels the call: the attempt in flight ends at once (its isolate and every
   * process it started are killed), nothing is retried, no fallback runs, and the call resolves
   * to E_CANCELLED. A signal already aborted refuses the call before anything runs.
   */
  signal?: AbortSignal;
  /**
   * Hears where the call is: once as each attempt starts (`retryDelayMs` 0), and once when a
   * failed attempt will be retried (`attempt` is the next one, `retryDelayMs` the wait before
   * it). Called synchronously; whatever it throws is ignored.
   */
  onProgress?: (progress: CallProgress) => void;
}

/** What `onProgress` hears (MCP maps it to notifications/progress). */
export interface CallProgress {
  /** the attempt starting now, or (when `retryDelayMs` > 0) the one that starts after the delay */
  attempt: number;
  /** the attempts the retry plan allows in all */
  attempts: number;
  /** milliseconds until `attempt` starts; 0 when it starts now */
  retryDelayMs: number;
  /** a line for people: "attempt 2 of 3" / "attempt 1 of 3 failed (E_TIMEOUT); attempt 2 in 200 ms" */
  message: string;
}

/** The caller as given, made safe: unknown fields dropped, defaults filled in, the trust level checked. */
export function resolveCaller(options: CallOptions): { caller: Caller; trustValid: boolean; trustGiven: unknown; signal?: AbortSignal; onProgress?: (progress: CallProgress) => void } {
  const c: { id?: unknown; trust?: unknown; session?: unknown } = options.caller ?? {};
  const trustGiven = c.trust ?? "untrusted";
  const trustValid = isTrustLevel(trustGiven);
  const caller: Caller = { id: typeof c.id === "string" && c.id ? c.id : "anonymous", trust: trustValid ? trustGiven : "untrusted", ...(typeof c.session === "string" ? { session: c.session } : {}) };
  const signal = options.signal instanceof AbortSignal ? options.signal : undefined;
  const onProgress = typeof options.onProgress === "function" ? options.onProgress : undefined;
  return { caller, trustValid, trustGiven, ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) };
}
