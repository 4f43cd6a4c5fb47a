/**
 * The contract's call-level events (DESIGN.md, security log): call.start, call.denied and
 * call.end, each carrying the call's contract fields. Execution writes its own events (attempt.*,
 * capability, skill.log, process.exec, fallback.start) through the same bound `log`.
 */
import type { AuditLog } from "../audit/log.js";
import type { CallLog } from "../execution/scope.js";
import type { Caller } from "./caller.js";

/** The fields every event of a call carries. */
export interface CallBase {
  callId: string;
  skill: string;
  caller: string;
  trust: string;
  session: string | null;
  policyVersion: string;
  parentCallId?: string;
  [field: string]: unknown;
}

export function callBase(callId: string, skill: string, caller: Caller, policyVersion: string, parentCallId: string | undefined): CallBase {
  return { callId, skill, caller: caller.id, trust: caller.trust, session: caller.session ?? null, policyVersion, ...(parentCallId ? { parentCallId } : {}) };
}

/** Contract fields for events that belong to no call (policy reloads, approval decisions). */
export const SYSTEM_FIELDS = { callId: null, skill: null, caller: null, trust: null, session: null };

export class CallEvents {
  /** any event of this call, contract fields added */
  readonly log: CallLog;

  constructor(
    private readonly audit: AuditLog,
    readonly base: CallBase,
  ) {
    this.log = (event, fields, level) => audit.event(event, { ...base, ...fields }, level);
  }

  start(): void {
    this.audit.event("call.start", this.base);
  }

  /** The call was refused before it ran: by the host, the input check, authorization or admission. */
  denied(code: string, fields: Record<string, unknown>): void {
    this.audit.event("call.denied", { ...this.base, code, ...fields }, "warn");
  }

  end(
    fields:
      | { outcome: "ok"; attempts: number; fallback: string | null; durationMs: number }
      | { outcome: "error"; code: string; message: string; attempts: number; fallback: string | null; durationMs: number },
  ): void {
    if (fields.outcome === "ok") this.audit.event("call.end", { ...this.base, outcome: "ok", code: null, attempts: fields.attempts, fallback: fields.fallback, durationMs: fields.durationMs });
    else this.audit.event("call.end", { ...this.base, ...fields }, "warn");
  }
}
