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
}

/** The caller as given, made safe: unknown fields dropped, defaults filled in, the trust level checked. */
export function resolveCaller(options: CallOptions): { caller: Caller; trustValid: boolean; trustGiven: unknown } {
  const c: { id?: unknown; trust?: unknown; session?: unknown } = options.caller ?? {};
  const trustGiven = c.trust ?? "untrusted";
  const trustValid = isTrustLevel(trustGiven);
  const caller: Caller = { id: typeof c.id === "string" && c.id ? c.id : "anonymous", trust: trustValid ? trustGiven : "untrusted", ...(typeof c.session === "string" ? { session: c.session } : {}) };
  return { caller, trustValid, trustGiven };
}
