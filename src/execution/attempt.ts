/**
 * One attempt: a capability scope, the skill run in a sandbox worker under the attempt's
 * deadline, and the outcome translated. A refused access ends the attempt, and wins over
 * whatever the skill did after it (the skill may have caught the error).
 */
import type { ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { dispatch, type CapabilityScope } from "../capabilities/dispatch.js";
import type { PermissionDenied } from "../capabilities/errors.js";
import { killAll } from "../capabilities/process.js";
import { OutputInvalidError, PermissionDeniedError } from "../errors.js";
import type { LoadedSkill } from "../manifest/model.js";
import { translateOutcome } from "../sandbox/outcome.js";
import type { SkillCode } from "../sandbox/protocol.js";
import { clip, skillLogEntry } from "./log-budget.js";
import { scopeBase, type ExecutionCall, type ExecutionEnv } from "./scope.js";

/** Runs attempt number `attempt`; resolves with the skill's (schema-checked) output, rejects with a SkillError. */
export async function runAttempt(env: ExecutionEnv, call: ExecutionCall, inputJson: string, tmpDir: string, attempt: number): Promise<unknown> {
  const { skill, grant, log } = call;
  const started = performance.now();
  log("attempt.start", { attempt });
  let denied: PermissionDenied | undefined;
  let cancel: () => void = () => undefined;
  const children = new Set<ChildProcess>();
  const scope: CapabilityScope = {
    ...scopeBase(env, call, attempt, tmpDir, children),
    filterRequest: (request) => call.filterRequest(request, log),
    log: (level, message, fields) => {
      const { entry, bytes } = skillLogEntry(message, fields);
      const verdict = call.logBudget.admit(bytes);
      if (verdict === "keep") log("skill.log", { attempt, ...entry }, level === "warn" || level === "error" ? level : "info");
      else if (verdict === "first-drop") {
        // Once per call: the lines after this one are dropped, and the log says so.
        const b = call.logBudget;
        log("skill.log.truncated", { attempt, keptEvents: b.events, keptBytes: b.bytes, maxEvents: b.maxEvents, maxBytes: b.maxBytes }, "warn");
      }
    },
    denied: (err) => {
      denied ??= err;
      cancel();
    },
  };
  const { limits } = grant;
  const handle = env.supervisor.run({
    code: codeOf(skill),
    inputJson,
    envJson: JSON.stringify({ workspace: env.workspace, home: env.home, skill: skill.dir, tmp: tmpDir, callId: call.callId, attempt, trust: grant.trust }),
    memoryMb: limits.memoryMb,
    timeoutMs: limits.timeoutMs,
    outputBytes: limits.outputBytes,
    onCapability: (op, args) => dispatch(scope, op, args),
    // Capability calls share the deadline the supervisor enforces: it starts when a worker takes the attempt.
    onStart: () => {
      scope.deadline = performance.now() + limits.timeoutMs;
    },
    // An abort ends the attempt at once (the worker is told to stop, and killed past the grace);
    // the finally below kills every process the attempt started.
    ...(call.signal ? { signal: call.signal } : {}),
  });
  cancel = handle.cancel;
  // The target is the skill's data (a 30 MB argument list is possible): the message and details carry it cut to size.
  const deniedError = (d: PermissionDenied) => {
    const shown = clip("target", d.target);
    const reason = clip("reason", d.decision.reason)["reason"];
    return new PermissionDeniedError(`${skill.manifest.name}: ${d.op} ${String(shown["target"])} refused: ${String(reason)} (rule: ${d.decision.rule})`, {
      details: { op: d.op, ...shown, rule: d.decision.rule } as { op: string; target: string; rule: string },
    });
  };
  try {
    // The supervisor owns the deadline (from when a worker takes the attempt): no timer here.
    const { outcome, cpuMs } = await handle.result;
    if (denied) throw deniedError(denied);
    const { output } = translateOutcome(outcome, limits, skill.manifest.name);
    // The output schema is checked per attempt, so an invalid output can be retried or fall back.
    const outErrors = skill.validateOutput(output);
    if (outErrors.length > 0) throw new OutputInvalidError(`${skill.manifest.name} returned invalid output: ${outErrors.join("; ")}`, { details: { errors: outErrors } });
    log("attempt.end", { attempt, outcome: "ok", durationMs: round(performance.now() - started), cpuMs: round(cpuMs) });
    return output;
  } catch (err) {
    if (denied) throw deniedError(denied);
    throw err;
  } finally {
    // No process a skill started outlives its attempt.
    killAll(children);
  }
}

/** The message that ships a skill's modules to a worker, built once per loaded skill (workers keep it by key). */
const codes = new WeakMap<LoadedSkill, SkillCode>();
function codeOf(skill: LoadedSkill): SkillCode {
  let code = codes.get(skill);
  if (!code) {
    code = { key: `${skill.manifest.name}@${skill.entrySha256}@${skill.dir}`, name: skill.manifest.name, entry: skill.manifest.entry, files: [...skill.files] };
    codes.set(skill, code);
  }
  return code;
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
