import pTimeout, { TimeoutError as PTimeoutError } from "p-timeout";
import { TimeoutError } from "../errors.js";

/** Bounds one attempt's wall clock (host calls included). On expiry `onTimeout` stops the work. */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => void, what: string): Promise<T> {
  try {
    return await pTimeout(work, { milliseconds: timeoutMs });
  } catch (err) {
    if (err instanceof PTimeoutError) {
      onTimeout();
      throw new TimeoutError(`${what} did not finish within timeoutMs (${timeoutMs} ms)`, { retryable: true });
    }
    throw err;
  }
}
