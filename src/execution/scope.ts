/**
 * What the attempts of one call share: the host's parts execution needs, the call as execution
 * sees it, the per-call ${tmp} folder, and the capability scope (grant, deadline, logging) that
 * every capability call of an attempt, and a fallback command, is checked and recorded through.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { CallProgress } from "../call/caller.js";
import type { Resolver } from "../capabilities/net.js";
import type { LoadedSkill } from "../manifest/model.js";
import type { OutgoingRequest, RequestFilterResult } from "../policy/engine/filters.js";
import { clip, clipArgs, type SkillLogBudget } from "./log-budget.js";
import { TMP_PLACEHOLDER } from "../policy/match.js";
import type { ControlPlane } from "../policy/control-plane.js";
import type { Decision, Grant } from "../policy/model.js";
import type { Supervisor } from "../sandbox/supervisor.js";
import type { Slots } from "./slots.js";

/** Writes one security-log event of this call (the call's contract fields are added). */
export type CallLog = (event: string, fields: Record<string, unknown>, level?: "info" | "warn" | "error") => void;

/** The host's parts that execution uses. */
export interface ExecutionEnv {
  /** real paths */
  workspace: string;
  home: string;
  resolveHost: Resolver;
  supervisor: Supervisor;
  slots: Slots;
  /** counts one denial by rule (metrics) */
  denial(rule: string): void;
  /** what no skill may change or see; carried into every grant; @default none */
  controlPlane?: ControlPlane;
}

/** One authorized, admitted call, as execution sees it. */
export interface ExecutionCall {
  callId: string;
  skill: LoadedSkill;
  grant: Grant;
  log: CallLog;
  /** aborted when the call is cancelled (its caller's signal, or the host shutting down) */
  signal?: AbortSignal;
  /** hears each attempt start and each retry scheduled (CallOptions.onProgress) */
  onProgress?: (progress: CallProgress) => void;
  /** the policy version's request filters over what ctx.fetch sends (URL, headers, body; raw and decoded) */
  filterRequest(request: OutgoingRequest, log: CallLog): RequestFilterResult;
  /** this call's ctx.log budget, shared by its attempts */
  logBudget: SkillLogBudget;
}

/** The per-call ${tmp} folder: created only when the grant can use it, removed when the call's attempts end. */
export interface CallTmp {
  dir: string;
  remove(): void;
}

export function callTmp(call: ExecutionCall): CallTmp {
  const { grant } = call;
  // ${tmp} exists when the skill declares needs in it or may run processes (their HOME and default cwd).
  const usesTmp = grant.files.some((r) => r.pattern.startsWith(TMP_PLACEHOLDER)) || grant.process.length > 0;
  if (!usesTmp) return { dir: join(tmpdir(), `skillbox-none-${call.callId}`), remove: () => undefined };
  return freshTmp();
}

export function freshTmp(): CallTmp {
  const dir = realpathSync.native(mkdtempSync(join(tmpdir(), "skillbox-")));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A process.exec event's fields with the skill-chosen parts (command, arguments, cwd, reason) cut to size. */
function loggedExec(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...fields };
  for (const k of ["command", "resolved", "cwd", "reason"]) if (typeof fields[k] === "string") Object.assign(out, clip(k, fields[k]));
  if (Array.isArray(fields["args"])) Object.assign(out, clipArgs(fields["args"].map(String)));
  return out;
}

/** What every capability scope of one attempt shares: grant, deadline, logging. */
export function scopeBase(env: ExecutionEnv, call: ExecutionCall, attempt: number, tmpDir: string, children: Set<ChildProcess>) {
  const { grant, log } = call;
  return {
    grant,
    workspace: env.workspace,
    tmpDir,
    deadline: performance.now() + grant.limits.timeoutMs,
    resolve: env.resolveHost,
    children,
    record: (op: string, target: string, d: Decision, extra?: Record<string, unknown>) => {
      const inTmp = op.startsWith("fs.") && (target === tmpDir || target.startsWith(tmpDir + "/"));
      if (!d.allowed) env.denial(d.rule);
      // Targets and reasons carry the skill's data: cut, with the full length noted.
      log(
        "capability",
        { attempt, op, ...extra, ...clip("target", target), decision: d.allowed ? "allow" : "deny", rule: d.rule, ...(d.allowed ? {} : clip("reason", d.reason)), ...(inTmp ? { tmp: true } : {}) },
        d.allowed ? "info" : "warn",
      );
    },
    logExec: (fields: Record<string, unknown>) => log("process.exec", { attempt, ...loggedExec(fields) }, fields["decision"] === "allow" ? "info" : "warn"),
  };
}
