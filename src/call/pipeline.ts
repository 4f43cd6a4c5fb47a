/**
 * One call, top to bottom. Each stage is a named function in its own module; a stage either
 * hands the next one what it made or ends the call (call.denied and/or call.end in the log).
 *
 *   0 host      closed host, unwritable log under failMode: closed, invalid trust  (here)
 *   1 registry  the skill by name, or why there is none              registry/registry.ts  lookup()
 *   2 authorize manifest needs ∩ trust ceiling − deny → Grant        call/authorize.ts     authorizeCall()
 *   3 input     JSON object, size and depth caps, input schema       call/input.ts         checkInput()
 *   4 admission signatures, windows, per-caller concurrency, rate
 *               limits, input filters, approvals                     call/admission.ts     admit()
 *   5 execute   slot, ${tmp}, retry × (deadline, sandbox attempt)    execution/execute.ts  execute()
 *   6 fallback  fallback skill (a nested call) or command            execution/fallback.ts runFallback()
 *   7 output    content filters on the output                        call/output.ts        filterOutput()
 *   8 finish    metrics, call.end, the CallResult                    call/result.ts        finish()
 *
 * The policy version a call starts under stays its version to the end, whatever a reload does.
 * Authorization comes before the input is looked at: a caller who may not run the skill cannot
 * make the host validate anything. A stage that throws (a corrupt state file, a full TMPDIR)
 * still ends the call with a CallResult and its call.end.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { InputInvalidError, PermissionDeniedError, SkillError, SkillFailedError } from "../errors.js";
import { round } from "../execution/attempt.js";
import { execute } from "../execution/execute.js";
import { SkillLogBudget } from "../execution/log-budget.js";
import { cancelledBy } from "../execution/retry.js";
import { runFallback } from "../execution/fallback.js";
import { admit } from "./admission.js";
import { authorizeCall, notFound } from "./authorize.js";
import { resolveCaller, type CallOptions } from "./caller.js";
import type { CallContext } from "./context.js";
import { CallEvents, callBase } from "./events.js";
import { checkInput } from "./input.js";
import { filterOutput } from "./output.js";
import { finish, type CallRecord, type CallResult } from "./result.js";

/** Runs one call (nested `depth` > 0 for a fallback skill). Never throws: every end is a CallResult. */
export async function runCall(ctx: CallContext, name: string, input: unknown, options: CallOptions, depth = 0, parentCallId?: string): Promise<CallResult> {
  const started = performance.now();
  const callId = randomUUID();
  let call: CallRecord | undefined;
  try {
    const live = ctx.live();
    const resolved = resolveCaller(options);
    const events = new CallEvents(ctx.audit, callBase(callId, name, resolved.caller, live.policy.version, parentCallId));
    call = { name, callId, started, events, attempts: 0, fallback: null };
    return await stages(ctx, call, live, resolved, input, depth);
  } catch (err) {
    return unexpected(ctx, call, { name, callId, started }, err);
  }
}

/**
 * A stage threw instead of ending the call: the fault becomes this call's CallResult (E_SKILL_ERROR,
 * not retryable) with its call.end, so no rejection ever leaves the host.
 */
function unexpected(ctx: CallContext, call: CallRecord | undefined, basics: { name: string; callId: string; started: number }, err: unknown): CallResult {
  const cause = err instanceof Error ? err.message : String(err);
  const error = new SkillFailedError(`${basics.name}: the call failed inside skillbox: ${cause}`, { retryable: false, cause: err });
  if (call) {
    try {
      return finish(call, ctx.counters, { ok: false, error });
    } catch {
      // The log itself failed: still answer the caller.
    }
  }
  return { ok: false, callId: basics.callId, error: error.toJSON(), attempts: call?.attempts ?? 0, fallback: call?.fallback ?? null, durationMs: round(performance.now() - basics.started) };
}

async function stages(ctx: CallContext, call: CallRecord, live: ReturnType<CallContext["live"]>, resolved: ReturnType<typeof resolveCaller>, input: unknown, depth: number): Promise<CallResult> {
  const { name, callId, events } = call;
  const { caller, trustValid, trustGiven } = resolved;
  const end = (r: { ok: true; output: unknown } | { ok: false; error: SkillError }) => finish(call, ctx.counters, r);
  const refuse = (error: SkillError, fields: Record<string, unknown>) => {
    events.denied(error.code, fields);
    return end({ ok: false, error });
  };

  events.start();
  // 0 host
  if (ctx.closed()) return end({ ok: false, error: new SkillFailedError("the host is closed") });
  if (resolved.signal?.aborted) return end({ ok: false, error: cancelledBy(resolved.signal) });
  if (live.policy.audit.failMode === "closed" && !ctx.audit.healthy) {
    // "No action without a record": the policy refuses calls while the log cannot be written.
    return end({
      ok: false,
      error: new PermissionDeniedError(`refused: the security log ${ctx.audit.file} cannot be written and the policy sets audit.failMode: closed`, { details: { reason: "audit-unwritable" } }),
    });
  }
  if (!trustValid) {
    const err = new InputInvalidError(`caller.trust must be one of untrusted, user-verified, trusted, system; got ${JSON.stringify(trustGiven)}`);
    return refuse(err, { reason: err.message });
  }

  // 1 registry
  const skill = ctx.registry.lookup(name);
  if (skill instanceof SkillError) return end({ ok: false, error: skill.code === "E_SKILL_NOT_FOUND" ? notFound(live, ctx.registry.all(), name, caller.trust, ctx) : skill });

  // 2 authorize
  const auth = authorizeCall(live, skill, caller.trust, ctx);
  if (!auth.ok) {
    for (const n of auth.needs) ctx.counters.denial(`authorize:${n.kind}`);
    return refuse(auth.error, { needs: auth.needs.map((n) => ({ kind: n.kind, target: n.target, access: n.access ?? null, rule: n.reason })) });
  }

  // 3 input
  const inputJson = checkInput(skill, input, ctx.maxInputBytes);
  if (inputJson instanceof SkillError) return refuse(inputJson, { reason: inputJson.message });

  // 4 admission
  const admission = await admit(live, skill, caller, input, events.log);
  if (!admission.ok) {
    ctx.counters.denial(admission.rule);
    return refuse(admission.error, { rule: admission.rule, reason: admission.error.message, details: admission.error.details ?? null });
  }
  try {
    const { signal, onProgress } = resolved;
    const running = {
      callId,
      skill,
      grant: auth.grant,
      log: events.log,
      filterRequest: live.engine.filterRequest.bind(live.engine),
      logBudget: new SkillLogBudget(),
      depth,
      ...(signal ? { signal } : {}),
      ...(onProgress ? { onProgress } : {}),
    };

    // 5 execute (a filter that redacted something gave a new input; otherwise its JSON is reused)
    const run = await execute(ctx, running, admission.input === input ? inputJson : JSON.stringify(admission.input));
    call.attempts = run.attempts;
    let produced: { ok: true; output: unknown } | { ok: false; error: SkillError } = run;
    // A cancelled call ends here, whatever its last attempt said: no fallback, no retry.
    if (!run.ok && signal?.aborted) return end({ ok: false, error: run.error.code === "E_CANCELLED" ? run.error : cancelledBy(signal) });
    if (!run.ok) {
      // 6 fallback (a fallback skill is part of this call: the same signal cancels it)
      const fb = await runFallback(ctx, running, run.error, admission.input, (fbName, fbInput, fbDepth) => runCall(ctx, fbName, fbInput, { caller, ...(signal ? { signal } : {}) }, fbDepth, callId));
      call.fallback = fb.fallback;
      produced = fb.result.ok || !signal?.aborted ? fb.result : { ok: false, error: cancelledBy(signal) };
    }
    if (!produced.ok) return end(produced);

    // 7 output
    const out = filterOutput(live, name, produced.output, events.log);
    if (!out.ok) ctx.counters.denial(out.rule);

    // 8 finish
    return end(out);
  } finally {
    // A lease that cannot be released is logged; it lapses by itself when it stops being renewed.
    await admission.release().catch((err: unknown) => events.log("state.error", { stage: "release", message: (err as Error).message }, "warn"));
  }
}
