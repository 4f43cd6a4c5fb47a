import pRetry from "p-retry";
import type { RetryOptions } from "../manifest/schema.js";
import { asSkillError, CancelledError, SkillError } from "../errors.js";

export { asSkillError } from "../errors.js";

export interface AttemptInfo {
  attempt: number;
  error: SkillError;
  /** delay before the next attempt, 0 when none follows */
  retryDelayMs: number;
  willRetry: boolean;
}

/**
 * Runs `fn` up to `plan.attempts` times with exponential backoff (and jitter), retrying only
 * failures marked retryable. Resolves with the value and how many attempts ran; rejects with
 * the last SkillError and the attempt count. When `signal` aborts, nothing more runs (the wait
 * for the next attempt ends too) and it rejects with E_CANCELLED; the attempt the abort cut
 * short is still reported to `onFailure`, as E_CANCELLED.
 */
export async function withRetry<T>(plan: RetryOptions, fn: (attempt: number) => Promise<T>, onFailure: (info: AttemptInfo) => void, signal?: AbortSignal): Promise<{ value: T; attempts: number }> {
  let attempts = 0;
  try {
    const value = await pRetry(
      async (n) => {
        attempts = n;
        if (signal?.aborted) throw cancelledBy(signal);
        try {
          return await fn(n);
        } catch (err) {
          // p-retry reports no failure once the signal has aborted: the cut-short attempt is reported here.
          if (signal?.aborted) onFailure({ attempt: n, error: isCancelled(err) ? asSkillError(err) : cancelledBy(signal), retryDelayMs: 0, willRetry: false });
          throw err;
        }
      },
      {
        retries: plan.attempts - 1,
        factor: plan.factor,
        minTimeout: plan.initialDelayMs,
        maxTimeout: plan.maxDelayMs,
        randomize: plan.jitter,
        ...(signal ? { signal } : {}),
        shouldRetry: ({ error }) => error instanceof SkillError && error.retryable,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft, retryDelay }) => {
          const err = asSkillError(error);
          const willRetry = retriesLeft > 0 && err.retryable;
          onFailure({ attempt: attemptNumber, error: err, retryDelayMs: willRetry ? retryDelay : 0, willRetry });
        },
      },
    );
    return { value, attempts };
  } catch (err) {
    const error = signal?.aborted && !isCancelled(err) ? cancelledBy(signal) : asSkillError(err);
    throw Object.assign(error, { attempts });
  }
}

function isCancelled(err: unknown): boolean {
  return err instanceof SkillError && err.code === "E_CANCELLED";
}

/** The E_CANCELLED error for an aborted signal; its reason, when it says something, is kept. */
export function cancelledBy(signal: AbortSignal): SkillError {
  const r: unknown = signal.reason;
  const reason = r instanceof Error ? r.message : typeof r === "string" ? r : "cancelled by its caller";
  return new CancelledError(`the call was cancelled: ${reason}`, { retryable: false, details: { reason } });
}
