import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { checkFileAccess } from "../policy/check.js";
import { CONTROL_PLANE_RULE } from "../policy/control-plane.js";
import type { Decision, Grant } from "../policy/model.js";
import { checkProcess } from "../policy/process.js";
import { BWRAP_INSTALL_HINT, bwrapArgs, detectBwrap, type DetectOptions, type SandboxMode } from "./confine.js";
import { CapabilityFailure, PermissionDenied } from "./errors.js";
import { resolvePath, type ResolvedPath } from "./paths.js";
import { snapshotBeforeRun, sweepAfterRun, writableRoots } from "./sweep.js";
import { buildView, removeScratch } from "./view.js";

export const MAX_OUTPUT_BYTES = 1024 * 1024;
const MAX_ARGS = 256;
/** Characters of all arguments of one exec together (the kernel's own limit is about 2 MB). */
export const MAX_ARGS_TOTAL_CHARS = 256 * 1024;
/** How long output is still collected after an unconfined child exited while something else holds its pipes. */
const EXIT_DRAIN_MS = 250;

export interface ExecScope {
  grant: Grant;
  workspace: string;
  tmpDir: string;
  deadline: number;
  /** children still running; the host kills them when the attempt ends */
  children: Set<ChildProcess>;
  record(op: string, target: string, decision: Decision, extra?: Record<string, unknown>): void;
  /** one `process.exec` event per run or refusal */
  logExec(fields: Record<string, unknown>): void;
  /**
   * Called when the process created a control-plane entry (removed again): the attempt ends with
   * E_PERMISSION_DENIED, the skill still gets the result. Without it (a fallback command) the exec throws.
   */
  denied?(err: PermissionDenied): void;
  /** overrides the grant's sandbox mode, or says where to find bwrap */
  sandbox?: Partial<SandboxSetting>;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  truncated: boolean;
  timedOut: boolean;
}

/** Finds a command: absolute paths as given, bare names only in the policy's bin path (never the caller's PATH). */
export function resolveCommand(command: string, binPath: readonly string[]): string | undefined {
  const candidates = isAbsolute(command) ? [command] : command.includes("/") ? [] : binPath.map((d) => join(d, command));
  for (const c of candidates) {
    try {
      const real = realpathSync.native(c);
      if (statSync(real).isFile()) {
        accessSync(real, constants.X_OK);
        return real;
      }
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** How spawned processes are confined (the policy's `process.sandbox`), and where to look for bwrap. */
export interface SandboxSetting {
  mode: SandboxMode;
  detect?: DetectOptions;
}

/** Whether this exec runs under bwrap, runs unconfined, or must be refused (`required` without a working bwrap). */
export async function sandboxFor(setting: SandboxSetting | undefined): Promise<{ kind: "bwrap"; path: string } | { kind: "none"; reason: string } | { kind: "refuse"; reason: string }> {
  const mode = setting?.mode ?? "auto";
  if (mode === "off") return { kind: "none", reason: "the policy turns the sandbox off (process.sandbox: off)" };
  const s = await detectBwrap(setting?.detect);
  if (s.available) return { kind: "bwrap", path: s.path };
  if (mode === "required") return { kind: "refuse", reason: `the policy requires a sandbox for processes (process.sandbox: required) and none is available: ${s.reason}; ${BWRAP_INSTALL_HINT}` };
  return { kind: "none", reason: s.reason };
}

/** ctx.exec and fallback.command: checked, resolved, confined, run without a shell in its own process group. */
export async function execCapability(scope: ExecScope, rawCommand: unknown, rawArgs: unknown, rawOptions: unknown): Promise<ExecResult> {
  if (typeof rawCommand !== "string" || rawCommand.length === 0 || rawCommand.length > 4096 || rawCommand.includes("\0")) throw new CapabilityFailure("exec: command must be a non-empty string");
  if (!Array.isArray(rawArgs) || rawArgs.length > MAX_ARGS || !rawArgs.every((a) => typeof a === "string" && !a.includes("\0") && a.length <= 65536)) {
    throw new CapabilityFailure(`exec: args must be an array of at most ${MAX_ARGS} strings without NUL bytes`);
  }
  const argChars = (rawArgs as string[]).reduce((n, a) => n + a.length, 0);
  // Every argument is matched against the rules on the host's main thread: large data goes on stdin.
  if (argChars > MAX_ARGS_TOTAL_CHARS) throw new CapabilityFailure(`exec: args are ${argChars} characters in all, more than ${MAX_ARGS_TOTAL_CHARS}; pass large data on stdin`);
  const command = rawCommand;
  const args = rawArgs as string[];
  const opts = (rawOptions ?? {}) as { cwd?: unknown; stdin?: unknown; timeoutMs?: unknown };
  const target = [command, ...args].join(" ");
  const sandbox = await sandboxFor({ mode: scope.grant.sandbox, ...scope.sandbox });
  const sandboxName = sandbox.kind === "bwrap" ? "bwrap" : "none";
  const refuse: (d: Extract<Decision, { allowed: false }>) => never = (d) => {
    scope.record("exec", target, d);
    scope.logExec({ command, args, decision: "deny", rule: d.rule, reason: d.reason, sandbox: sandboxName });
    throw new PermissionDenied("exec", target, d);
  };

  // The working folder must lie inside the granted files area (or the call's tmp folder).
  let cwd = scope.tmpDir;
  if (opts.cwd !== undefined) {
    if (typeof opts.cwd !== "string" || opts.cwd.length === 0 || opts.cwd.includes("\0")) throw new CapabilityFailure("exec: cwd must be a non-empty string");
    const t = await resolvePath(opts.cwd, scope.workspace);
    const d = checkFileAccess(scope.grant, t.real, "list", scope.tmpDir, t.lexical);
    if (!d.allowed) refuse({ allowed: false, rule: d.rule, reason: `working folder ${t.lexical}: ${d.reason}` });
    if (!t.exists) throw new CapabilityFailure(`exec: cwd ${t.lexical} does not exist`);
    cwd = t.real;
  }
  // Path arguments are resolved (against the working folder, symlinks followed) before the check.
  const resolved = new Map<string, ResolvedPath>();
  for (const a of new Set(args)) if (a.length > 0 && !a.startsWith("-") && a.length <= 4096) resolved.set(a, await resolvePath(a, cwd));
  const decision = checkProcess(scope.grant, command, args, {
    tmpDir: scope.tmpDir,
    resolvePath: (a) => resolved.get(a) ?? { lexical: a, real: a },
  });
  if (!decision.allowed) refuse(decision);
  const executable = resolveCommand(command, scope.grant.binPath);
  if (!executable)
    refuse({ allowed: false, rule: "bin-path", reason: `${command} was not found as an executable ${isAbsolute(command) ? "file" : `in the policy's bin path (${scope.grant.binPath.join(":")})`}` });
  if (sandbox.kind === "refuse") refuse({ allowed: false, rule: "sandbox:required", reason: sandbox.reason });

  const stdin = opts.stdin === undefined ? undefined : String(opts.stdin);
  if (stdin !== undefined && Buffer.byteLength(stdin) > MAX_OUTPUT_BYTES) throw new CapabilityFailure(`exec: stdin is larger than ${MAX_OUTPUT_BYTES} bytes`);
  const before = await snapshotBeforeRun(scope.grant.controlPlane, await writableRoots(scope.grant, decision.paths));
  let file = executable;
  let argv = args;
  let scratch: string | undefined;
  if (sandbox.kind === "bwrap") {
    const view = await buildView({ grant: scope.grant, tmpDir: scope.tmpDir, cwd, executable, paths: decision.paths, network: decision.network });
    scratch = view.scratch;
    file = sandbox.path;
    argv = [...bwrapArgs(view), "--", executable, ...args];
  }
  const left = scope.deadline - performance.now();
  if (left <= 0) {
    if (scratch) await removeScratch(scratch);
    throw new CapabilityFailure("exec: no time left in this attempt", true);
  }
  const timeoutMs = Math.max(1, Math.min(left, typeof opts.timeoutMs === "number" && opts.timeoutMs > 0 ? opts.timeoutMs : left));
  scope.record("exec", target, decision);

  const started = performance.now();
  const marker = sandbox.kind === "bwrap" ? undefined : randomUUID();
  const child = spawn(file, argv, {
    cwd,
    shell: false,
    detached: true, // its own process group, so the whole group can be killed
    stdio: ["pipe", "pipe", "pipe"],
    // Scrubbed: nothing of the host's environment (no NODE_OPTIONS, LD_PRELOAD, secrets) reaches the child.
    env: { PATH: scope.grant.binPath.join(":"), LANG: "C.UTF-8", LC_ALL: "C.UTF-8", HOME: scope.tmpDir, TMPDIR: scope.tmpDir, ...(marker ? { [MARKER_VAR]: marker } : {}) },
  });
  scope.children.add(child);
  if (marker) markers.set(scope.children, [...(markers.get(scope.children) ?? []), marker].slice(-256));
  let truncated = false;
  let timedOut = false;
  const collect = (stream: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (c: Buffer) => {
      if (size >= MAX_OUTPUT_BYTES) return;
      const room = MAX_OUTPUT_BYTES - size;
      chunks.push(c.length > room ? c.subarray(0, room) : c);
      size += Math.min(c.length, room);
      if (size >= MAX_OUTPUT_BYTES) {
        truncated = true;
        killGroup(child);
      }
    });
    return () => Buffer.concat(chunks).toString("utf8");
  };
  const out = collect(child.stdout!);
  const err = collect(child.stderr!);
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(stdin);
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, timeoutMs);
  let drain: NodeJS.Timeout | undefined;
  let drained = false;
  const result = await new Promise<ExecResult>((resolveRun) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) =>
      resolveRun({ exitCode: code, signal, stdout: out(), stderr: err(), durationMs: Math.round((performance.now() - started) * 1000) / 1000, truncated, timedOut });
    child.on("error", (e) => {
      resolveRun({ exitCode: null, signal: null, stdout: "", stderr: e.message, durationMs: performance.now() - started, truncated, timedOut });
    });
    child.on("close", finish);
    // Unconfined, a descendant that left the process group (setsid) may hold the pipes open after the
    // child is gone: the output is what arrived shortly after the exit, and the call goes on.
    child.on("exit", (code, signal) => {
      killGroup(child);
      drain = setTimeout(() => {
        drained = true;
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, EXIT_DRAIN_MS);
    });
  });
  clearTimeout(timer);
  if (drain) clearTimeout(drain);
  killGroup(child); // anything the child left running in its group
  // something outside the group held the pipes after the child exited: find it now
  if (marker && drained) await reapMarked([marker]);
  scope.children.delete(child);
  if (scratch) await removeScratch(scratch);
  scope.logExec({
    command,
    resolved: executable,
    args,
    cwd,
    decision: "allow",
    rule: decision.rule,
    sandbox: sandboxName,
    network: sandboxName === "bwrap" ? decision.network : true,
    exitCode: result.exitCode,
    signal: result.signal,
    durationMs: result.durationMs,
    truncated,
    timedOut,
  });
  const denial = await sweepControlPlane(scope, before);
  if (denial) {
    if (!scope.denied) throw denial;
    scope.denied(denial);
  }
  return result;
}

/**
 * After the process (confined: with all its descendants) is gone: what it created of the control
 * plane in its writable folders is removed and logged as a denial (op `exec.created`).
 */
async function sweepControlPlane(scope: ExecScope, before: Awaited<ReturnType<typeof snapshotBeforeRun>>): Promise<PermissionDenied | undefined> {
  const { removed, overflow } = await sweepAfterRun(scope.grant.controlPlane, before);
  let first: PermissionDenied | undefined;
  const deny = (path: string, reason: string) => {
    const d = { allowed: false as const, rule: CONTROL_PLANE_RULE, reason };
    scope.record("exec.created", path, d);
    first ??= new PermissionDenied("exec.created", path, d);
  };
  for (const path of removed)
    deny(path, "the process created it in a folder it may write; git runs hooks and config commands from .git outside any sandbox, and no skill may create control-plane paths (removed)");
  if (overflow) deny(before.roots.join(", "), `${overflow}: a control-plane path the process may have created cannot be ruled out`);
  return first;
}

export function killAll(children: Set<ChildProcess>): void {
  for (const c of children) killGroup(c);
  children.clear();
  // one scan of /proc per attempt for everything its unconfined processes left behind
  const left = markers.get(children);
  markers.delete(children);
  if (left?.length) void reapMarked(left);
}

/** Unconfined children carry a marker in their environment, inherited by every descendant; kept per attempt. */
const markers = new WeakMap<Set<ChildProcess>, string[]>();
const MARKER_VAR = "SKILLBOX_EXEC";

/**
 * Kills every process still carrying this marker: what an unconfined child left behind outside its
 * process group (a `setsid` grandchild). Best effort: a descendant that clears its environment
 * escapes it; the bwrap confinement has no such gap (its PID namespace ends with the child).
 */
async function reapMarked(marks: readonly string[]): Promise<void> {
  const needles = marks.map((m) => Buffer.from(`${MARKER_VAR}=${m}\0`));
  let pids: string[];
  try {
    pids = await readdir("/proc");
  } catch {
    return;
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${pid}/environ`);
      if (needles.some((n) => environ.includes(n))) process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone, or not ours */
    }
  }
}
