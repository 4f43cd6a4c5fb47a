/**
 * Stage 6, fallback: after a failure whose code allows it (FALLBACK_CODES), the manifest's
 * fallback runs — another skill (a full call of its own, depth-capped), or a command checked
 * against this skill's own process permissions. Either way the error names both failures.
 */
import type { ChildProcess } from "node:child_process";
import { PermissionDenied } from "../capabilities/errors.js";
import { execCapability, killAll } from "../capabilities/process.js";
import { asSkillError, FALLBACK_CODES, PermissionDeniedError, SkillError, SkillFailedError, TimeoutError, type ErrorCode } from "../errors.js";
import { expandVars } from "../util/vars.js";
import { freshTmp, scopeBase, type ExecutionCall, type ExecutionEnv } from "./scope.js";

export const MAX_FALLBACK_DEPTH = 3;

/** Runs the fallback skill as a call of its own (nested `depth`), resolving to its result. */
export type CallSkill = (name: string, input: unknown, depth: number) => Promise<{ ok: true; output: unknown } | { ok: false; error: { code: ErrorCode; message: string } }>;

export interface FallbackRun {
  /** what ran as the fallback (a skill name or the command line), null when none did */
  fallback: string | null;
  result: { ok: true; output: unknown } | { ok: false; error: SkillError };
}

export async function runFallback(env: ExecutionEnv, call: ExecutionCall & { depth: number }, failure: SkillError, input: unknown, callSkill: CallSkill): Promise<FallbackRun> {
  const name = call.skill.manifest.name;
  const fb = call.skill.manifest.fallback;
  if (!fb || !FALLBACK_CODES.has(failure.code)) return { fallback: null, result: { ok: false, error: failure } };
  if ("skill" in fb) {
    call.log("fallback.start", { fallback: fb.skill, after: failure.code });
    if (call.depth >= MAX_FALLBACK_DEPTH) {
      return {
        fallback: fb.skill,
        result: { ok: false, error: new SkillFailedError(`fallback chain deeper than ${MAX_FALLBACK_DEPTH}; stopped at ${fb.skill}`, { details: { primary: failure.toJSON() } }) },
      };
    }
    const r = await callSkill(fb.skill, input, call.depth + 1);
    if (r.ok) return { fallback: fb.skill, result: { ok: true, output: r.output } };
    const error = new SkillError(r.error.code, `${name} failed (${failure.code}: ${failure.message}); its fallback ${fb.skill} failed too: ${r.error.message}`, {
      retryable: false,
      details: { primary: failure.toJSON(), fallback: r.error },
    });
    return { fallback: fb.skill, result: { ok: false, error } };
  }
  const commandLine = fb.command.join(" ");
  call.log("fallback.start", { fallback: commandLine, after: failure.code });
  try {
    return { fallback: commandLine, result: { ok: true, output: await fallbackCommand(env, call, fb.command) } };
  } catch (err) {
    const e = asSkillError(err);
    const error = new SkillError(e.code, `${name} failed (${failure.code}: ${failure.message}); its fallback command failed too: ${e.message}`, {
      details: { primary: failure.toJSON(), fallback: e.toJSON() },
    });
    return { fallback: commandLine, result: { ok: false, error } };
  }
}

/** fallback.command: a process run checked against this skill's own process permissions. */
async function fallbackCommand(env: ExecutionEnv, call: ExecutionCall, command: string[]): Promise<unknown> {
  const { skill, grant } = call;
  const tmp = freshTmp();
  const children = new Set<ChildProcess>();
  // Cancelling the call kills the fallback command (and its process group) at once.
  const stop = () => killAll(children);
  call.signal?.addEventListener("abort", stop, { once: true });
  try {
    const vars = { workspace: env.workspace, home: env.home, skill: skill.dir, tmp: tmp.dir };
    const [cmd, ...args] = command.map((part) => expandVars(part, vars));
    const scope = scopeBase(env, call, 0, tmp.dir, children);
    let run;
    try {
      run = await execCapability(scope, cmd, args, {});
    } catch (err) {
      if (err instanceof PermissionDenied) throw new PermissionDeniedError(`fallback command refused: ${err.message}`, { details: { op: "exec", target: err.target, rule: err.decision.rule } });
      throw new SkillFailedError((err as Error).message);
    }
    if (run.timedOut) throw new TimeoutError(`fallback command ${command.join(" ")} did not finish within ${grant.limits.timeoutMs} ms`);
    if (run.exitCode !== 0) throw new SkillFailedError(`fallback command ${command.join(" ")} exited with ${run.exitCode ?? run.signal}: ${run.stderr.slice(0, 500)}`);
    return { exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr };
  } finally {
    call.signal?.removeEventListener("abort", stop);
    killAll(children);
    tmp.remove();
  }
}
