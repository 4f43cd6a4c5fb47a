import pRetry from "p-retry";
import pTimeout, { TimeoutError } from "p-timeout";
import type { RetryOptions } from "../manifest/schema.js";
import { SkillError } from "../errors.js";

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
 * the last SkillError and the attempt count.
 */
export async function withRetry<T>(plan: RetryOptions, fn: (attempt: number) => Promise<T>, onFailure: (info: AttemptInfo) => void): Promise<{ value: T; attempts: number }> {
  let attempts = 0;
  try {
    const value = await pRetry(
      async (n) => {
        attempts = n;
        return fn(n);
      },
      {
        retries: plan.attempts - 1,
        factor: plan.factor,
        minTimeout: plan.initialDelayMs,
        maxTimeout: plan.maxDelayMs,
        randomize: plan.jitter,
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
    throw Object.assign(asSkillError(err), { attempts });
  }
}

/** Bounds one attempt's wall clock (host calls included). On expiry `onTimeout` stops the work. */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => void, what: string): Promise<T> {
  try {
    return await pTimeout(work, { milliseconds: timeoutMs });
  } catch (err) {
    if (err instanceof TimeoutError) {
      onTimeout();
      throw new SkillError("E_TIMEOUT", `${what} did not finish within timeoutMs (${timeoutMs} ms)`, { retryable: true });
    }
    throw err;
  }
}

export function asSkillError(err: unknown): SkillError {
  if (err instanceof SkillError) return err;
  return new SkillError("E_SKILL_ERROR", err instanceof Error ? err.message : String(err), { retryable: false });
}
