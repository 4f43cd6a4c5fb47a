import type { Metrics } from "../audit/metrics.js";
import type { ErrorCode, SkillError } from "../errors.js";
import { round } from "../execution/attempt.js";
import type { CallEvents } from "./events.js";

export type CallResult =
  | { ok: true; callId: string; output: unknown; attempts: number; fallback: string | null; durationMs: number }
  | { ok: false; callId: string; error: { code: ErrorCode; message: string; retryable: boolean; details?: unknown }; attempts: number; fallback: string | null; durationMs: number };

/** One call in progress: what it ran so far, for its CallResult and its call.end event. */
export interface CallRecord {
  name: string;
  callId: string;
  /** performance.now() at call.start */
  started: number;
  events: CallEvents;
  attempts: number;
  fallback: string | null;
}

/** Stage 8, finish: counts the call, writes call.end, builds the CallResult. */
export function finish(call: CallRecord, counters: Metrics, r: { ok: true; output: unknown } | { ok: false; error: SkillError }): CallResult {
  const durationMs = round(performance.now() - call.started);
  const { callId, attempts, fallback } = call;
  counters.call(call.name, r.ok ? "ok" : r.error.code, durationMs);
  if (r.ok) {
    call.events.end({ outcome: "ok", attempts, fallback, durationMs });
    return { ok: true, callId, output: r.output, attempts, fallback, durationMs };
  }
  const error = r.error.toJSON();
  call.events.end({ outcome: "error", code: error.code, message: error.message, attempts, fallback, durationMs });
  return { ok: false, callId, error, attempts, fallback, durationMs };
}
