import pRetry from "p-retry";
import type { RetryOptions } from "../manifest/schema.js";
import { asSkillError, SkillError } from "../errors.js";

export { asSkillError } from "../errors.js";
export { withDeadline } from "./deadline.js";

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
