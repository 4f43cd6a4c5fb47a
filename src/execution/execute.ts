/**
 * Stage 5, execute: in a concurrency slot, with the call's ${tmp}, the attempts under the
 * manifest's retry plan, each with its own deadline. A fallback runs outside the slot, so a
 * fallback skill never waits on its own parent's slot.
 */
import { asSkillError, SkillFailedError, type SkillError } from "../errors.js";
import { runAttempt } from "./attempt.js";
import { withRetry } from "./retry.js";
import { callTmp, type CallTmp, type ExecutionCall, type ExecutionEnv } from "./scope.js";
import type { CallProgress } from "../call/caller.js";

/** Tells the caller's progress hook; a hook that throws changes nothing. */
function progress(call: ExecutionCall, p: CallProgress): void {
  try {
    call.onProgress?.(p);
  } catch {
    // the caller's hook is not the call's business
  }
}

export type Execution = { ok: true; output: unknown; attempts: number } | { ok: false; error: SkillError; attempts: number };

export async function execute(env: ExecutionEnv, call: ExecutionCall, inputJson: string): Promise<Execution> {
  const release = await env.slots.acquire(call.signal);
  if (typeof release !== "function") {
    if (release.code !== "E_CANCELLED") call.log("call.denied", { code: release.code, reason: "busy" }, "warn");
    return { ok: false, error: release, attempts: 0 };
  }
  let tmp: CallTmp | undefined;
  let attempts = 0;
  try {
    try {
      tmp = callTmp(call);
    } catch (err) {
      return {
        ok: false,
        error: new SkillFailedError(`${call.skill.manifest.name}: could not create the call's temporary folder (TMPDIR full or read-only?): ${(err as Error).message}`, { retryable: false }),
        attempts: 0,
      };
    }
    const dir = tmp.dir;
    const plan = call.skill.manifest.retry;
    const result = await withRetry(
      plan,
      (attempt) => {
        progress(call, { attempt, attempts: plan.attempts, retryDelayMs: 0, message: `attempt ${attempt} of ${plan.attempts}` });
        return runAttempt(env, call, inputJson, dir, attempt);
      },
      ({ attempt, error, retryDelayMs, willRetry }) => {
        call.log("attempt.end", { attempt, outcome: "error", code: error.code, message: error.message, retryable: error.retryable, willRetry, retryDelayMs }, "warn");
        if (willRetry) {
          progress(call, {
            attempt: attempt + 1,
            attempts: plan.attempts,
            retryDelayMs,
            message: `attempt ${attempt} of ${plan.attempts} failed (${error.code}); attempt ${attempt + 1} in ${Math.round(retryDelayMs)} ms`,
          });
        }
      },
      call.signal,
    );
    return { ok: true, output: result.value, attempts: result.attempts };
  } catch (err) {
    attempts = (err as { attempts?: number }).attempts ?? attempts;
    return { ok: false, error: asSkillError(err), attempts };
  } finally {
    try {
      tmp?.remove();
    } finally {
      release();
    }
  }
}
