import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, realpathSync, rmSync, watch, type FSWatcher } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { AuditLog } from "./audit/log.js";
import { Metrics, type MetricsSnapshot } from "./audit/metrics.js";
import type { ChildProcess } from "node:child_process";
import { dispatch, type CapabilityScope } from "./capabilities/dispatch.js";
import { PermissionDenied } from "./capabilities/errors.js";
import { systemResolver, type Resolver } from "./capabilities/net.js";
import { execCapability, killAll } from "./capabilities/process.js";
import { FALLBACK_CODES, SkillError, ValidationError, type ErrorCode, type Issue } from "./errors.js";
import { asSkillError, withDeadline, withRetry } from "./execution/retry.js";
import { buildSkill, listSkillDirs, loadSkillDir, validateManifest, type LoadedSkill } from "./manifest/load.js";
import type { Manifest } from "./manifest/schema.js";
import { authorize, describeNeeds, type AuthorizeResult, type Grant } from "./policy/authorize.js";
import type { Decision } from "./policy/check.js";
import { builtinPolicy, loadPolicyFile, type Policy } from "./policy/load.js";
import type { Approval } from "./policy/engine/approvals.js";
import type { EngineLog } from "./policy/engine/engine.js";
import { makeLive, selfTest, snapshotPolicy, type LivePolicy } from "./policy/live.js";
import { TMP_PLACEHOLDER } from "./policy/match.js";
import { isTrustLevel, type TrustLevel } from "./policy/trust.js";
import { expandVars } from "./util/vars.js";
import { translateOutcome } from "./sandbox/outcome.js";
import type { SkillCode } from "./sandbox/protocol.js";
import { Supervisor } from "./sandbox/supervisor.js";
import { toolDefinitions, type ToolFormat } from "./tools.js";

export interface SkillHostOptions {
  /** folder of skill folders; @default "skills" (relative to the current directory) */
  skillsDir?: string;
  /** policy file; @default "skillbox.policy.yaml" in the workspace if it exists, else the built-in defaults */
  policy?: string;
  /** @default process.cwd() */
  workspace?: string;
  /**
   * security log file, or options: `file`, `key` (HMAC chain), `postgres` (also store the events
   * in PostgreSQL, a connection URL), `table`; @default ".skillbox/audit.jsonl" in the workspace
   */
  audit?: string | { file?: string; key?: string; postgres?: string; table?: string };
  /** sandbox worker processes; @default 2 */
  workers?: number;
  /**
   * Isolates prepared ahead, per skill and memory cap (perSkill) and in all per worker (max).
   * Each is used by one attempt only. 0 turns the pool off. @default { perSkill: 2, max: 8 }
   */
  pool?: { perSkill?: number; max?: number };
  /** calls executing at once in this host; more wait in a queue; @default 64 */
  maxConcurrent?: number;
  /** calls that may wait for a slot; past this a call is refused with E_RATE_LIMITED; @default 1024 */
  maxQueued?: number;
  /** largest accepted input, JSON-encoded; @default 1 MiB */
  maxInputBytes?: number;
  /** state that outlives a process (approvals, policy snapshots); @default "<workspace>/.skillbox" */
  stateDir?: string;
  /** epoch milliseconds for rate limits, time windows and approvals; @default Date.now */
  clock?: () => number;
  /** DNS resolution for ctx.fetch (host name -> addresses); @default the system resolver */
  resolveHost?: Resolver;
  /** start the sandbox workers at open, ahead of the first call; @default true */
  warm?: boolean;
  /** warnings (skills skipped, log failures); @default stderr */
  onWarning?: (message: string) => void;
}

export interface Caller {
  id: string;
  trust: TrustLevel;
  session?: string;
}

export interface CallOptions {
  caller?: Partial<Caller> & { trust?: string };
}

export type CallResult =
  | { ok: true; callId: string; output: unknown; attempts: number; fallback: string | null; durationMs: number }
  | { ok: false; callId: string; error: { code: ErrorCode; message: string; retryable: boolean; details?: unknown }; attempts: number; fallback: string | null; durationMs: number };

export interface SkillInfo {
  name: string;
  version: string;
  description: string;
  dir: string;
  entrySha256: string;
  permissions: Manifest["permissions"];
  limits: Manifest["limits"];
  fallback: string | null;
}

/** A skill folder that could not be loaded, and why. */
export interface LoadProblem {
  dir: string;
  code: ErrorCode;
  message: string;
  issues: Issue[];
}

/** A skill given from memory: a manifest object plus its module sources. */
export interface SkillSource {
  manifest: unknown;
  files: Record<string, string>;
}

const DEFAULT_MAX_INPUT = 1024 * 1024;

/** One call in progress: who asked for what, under which policy version, and how it went so far. */
interface CallState {
  name: string;
  callId: string;
  started: number;
  caller: Caller;
  depth: number;
  /** the contract fields every event of this call carries */
  base: Record<string, unknown>;
  live: LivePolicy;
  attempts: number;
  fallback: string | null;
}

/** A call that passed stages 1-4: its skill, grant and log are known. */
interface RunningCall extends CallState {
  skill: LoadedSkill;
  grant: Grant;
  log: EngineLog;
}
/** Contract fields for events that belong to no call (policy reloads, approval decisions). */
const SYSTEM_FIELDS = { callId: null, skill: null, caller: null, trust: null, session: null };
const MAX_FALLBACK_DEPTH = 3;

/** The one object a host application holds: registry, policy, sandbox pool, security log. */
export class SkillHost {
  readonly workspace: string;
  readonly stateDir: string;
  private live: LivePolicy;
  private readonly clock: () => number;
  /** the policy file given to open(), watched by watch() */
  private readonly policyFile: string | undefined;
  readonly audit: AuditLog;
  readonly loadProblems: LoadProblem[] = [];
  private readonly counters: Metrics;
  private readonly skills = new Map<string, LoadedSkill>();
  private readonly supervisor: Supervisor;
  private readonly home: string;
  private readonly maxInputBytes: number;
  private readonly warn: (m: string) => void;
  private readonly resolveHost: Resolver;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private running = 0;
  private readonly queue: (() => void)[] = [];
  /** the folder scanned at open and by reload() */
  readonly skillsDir: string;
  private closed = false;

  private constructor(options: SkillHostOptions, policy: Policy, workspace: string, policyFile: string | undefined) {
    this.workspace = workspace;
    this.policyFile = policyFile;
    this.stateDir = resolve(workspace, options.stateDir ?? ".skillbox");
    this.clock = options.clock ?? Date.now;
    this.live = makeLive(policy, this.stateDir, this.clock);
    this.home = safeRealpath(homedir());
    this.maxInputBytes = options.maxInputBytes ?? DEFAULT_MAX_INPUT;
    this.warn = options.onWarning ?? ((m) => process.stderr.write(m + "\n"));
    this.resolveHost = options.resolveHost ?? systemResolver;
    this.maxConcurrent = Math.max(1, options.maxConcurrent ?? 64);
    this.maxQueued = Math.max(0, options.maxQueued ?? 1024);
    this.skillsDir = resolve(options.skillsDir ?? "skills");
    const audit = typeof options.audit === "string" ? { file: options.audit } : options.audit;
    this.audit = new AuditLog({
      file: resolve(workspace, audit?.file ?? ".skillbox/audit.jsonl"),
      redact: policy.audit.redact,
      ...(audit?.key !== undefined ? { key: audit.key } : {}),
      ...(audit?.postgres !== undefined ? { postgres: audit.postgres } : {}),
      ...(audit?.table !== undefined ? { table: audit.table } : {}),
      onError: this.warn,
    });
    this.counters = new Metrics(() => this.audit.failures, () => this.supervisor.kills);
    this.supervisor = new Supervisor({ workers: options.workers ?? 2, ...(options.pool ? { pool: options.pool } : {}) });
  }

  /** Opens a host: loads the policy (invalid: throws E_POLICY_INVALID) and every skill folder (broken ones are reported and skipped). */
  static async open(options: SkillHostOptions = {}): Promise<SkillHost> {
    let workspace: string;
    try {
      workspace = realpathSync.native(resolve(options.workspace ?? process.cwd()));
    } catch {
      throw new SkillError("E_INPUT_INVALID", `workspace ${options.workspace} does not exist`);
    }
    const implicit = join(workspace, "skillbox.policy.yaml");
    const policyFile = options.policy !== undefined ? resolve(options.policy) : existsSync(implicit) ? implicit : undefined;
    const policy = policyFile ? loadPolicyFile(policyFile) : builtinPolicy();
    const host = new SkillHost(options, policy, workspace, policyFile);
    host.reload();
    try {
      selfTest(policy, (n) => host.skills.get(n), { workspace, home: host.home }, host.warn);
    } catch (err) {
      await host.audit.close();
      throw err;
    }
    snapshotPolicy(policy, host.stateDir);
    if (options.warm !== false) await host.supervisor.warm();
    return host;
  }

  /**
   * Rescans the skills folder: new folders are added, changed ones reloaded, removed ones
   * dropped. A folder that no longer loads is reported and keeps its last good version.
   * Skills registered from memory are kept. Returns whether the set of skills changed.
   */
  reload(): boolean {
    const before = this.fingerprint();
    const dirs = listSkillDirs(this.skillsDir);
    const seen = new Set<string>();
    this.loadProblems.length = 0;
    for (const dir of dirs) {
      try {
        seen.add(this.register(dir).dir);
      } catch (err) {
        const e = asSkillError(err);
        this.loadProblems.push({ dir, code: e.code, message: e.message, issues: err instanceof ValidationError ? err.issues : [] });
        this.warn(`skillbox: skipped skill folder ${dir}:\n  ${e.message.split("\n").join("\n  ")}`);
        const real = safeRealpath(dir);
        for (const s of this.skills.values()) if (s.dir === real) seen.add(s.dir);
      }
    }
    const root = safeRealpath(this.skillsDir);
    for (const [name, s] of this.skills) {
      if (s.dir.startsWith(root + "/") && !seen.has(s.dir)) {
        this.skills.delete(name);
        this.dropGrants(name);
      }
    }
    return this.fingerprint() !== before;
  }

  private fingerprint(): string {
    return [...this.skills.values()].map((s) => `${s.manifest.name}:${s.entrySha256}:${JSON.stringify(s.manifest)}`).sort().join("\n");
  }

  private dropGrants(name: string): void {
    for (const key of this.live.grants.keys()) if (key.startsWith(name + "\0")) this.live.grants.delete(key);
  }

  /** Adds a skill from a folder, or from a manifest object plus module sources. Throws on an invalid skill. */
  register(source: string | SkillSource): SkillInfo {
    let skill: LoadedSkill;
    if (typeof source === "string") skill = loadSkillDir(source);
    else {
      const manifest = validateManifest(source.manifest, "<registered manifest>");
      const files = new Map(Object.entries(source.files));
      skill = buildSkill(manifest, `/registered/${manifest.name}`, files, "<registered manifest>");
    }
    const existing = this.skills.get(skill.manifest.name);
    if (existing && existing.dir !== skill.dir) {
      throw new ValidationError("E_MANIFEST_INVALID", [{ file: join(skill.dir, "skill.yaml"), field: "name", message: `"${skill.manifest.name}" is already registered from ${existing.dir}` }]);
    }
    // A folder whose skill was renamed: the old name goes.
    for (const [n, s] of this.skills) if (s.dir === skill.dir && n !== skill.manifest.name) this.skills.delete(n);
    this.skills.set(skill.manifest.name, skill);
    this.dropGrants(skill.manifest.name);
    return info(skill);
  }

  /** The policy in force. */
  get policy(): Policy {
    return this.live.policy;
  }

  /** Pending and decided approvals (newest first). */
  approvals(): Approval[] {
    return this.live.engine.approvals.list();
  }

  /** Approves or denies a pending approval; the decision is logged. Throws for an unknown or already decided id. */
  decideApproval(id: string, decision: "approve" | "deny", options: { by?: string; reason?: string } = {}): Approval {
    const a = this.live.engine.approvals.decide(id, decision === "approve" ? "approved" : "denied", options.by ?? "api", options.reason);
    this.audit.event("approval.decided", { ...SYSTEM_FIELDS, approvalId: a.id, decision: a.status, by: a.decidedBy, reason: a.reason ?? null, skill: a.skill, caller: a.caller, policyVersion: this.policy.version });
    return a;
  }

  list(): SkillInfo[] {
    return [...this.skills.values()].map(info).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Skills the given trust level may run, as tool definitions for a model API or MCP. */
  tools(format: ToolFormat, options: { trust?: TrustLevel } = {}): unknown[] {
    const trust = options.trust ?? "untrusted";
    const allowed = [...this.skills.values()].filter((s) => this.authorizeCached(s, trust).ok && this.live.engine.signatureFor(s, trust)?.valid !== false).sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
    return toolDefinitions(format, allowed.map((s) => s.manifest));
  }

  /** Decides whether a skill may run at a trust level, without running it. */
  authorize(name: string, trust: TrustLevel): AuthorizeResult {
    const skill = this.skills.get(name);
    if (!skill) throw new SkillError("E_SKILL_NOT_FOUND", `no skill named "${name}"`);
    return this.authorizeCached(skill, trust);
  }

  private authorizeCached(skill: LoadedSkill, trust: TrustLevel, live: LivePolicy = this.live): AuthorizeResult {
    const key = `${skill.manifest.name}\0${trust}`;
    let r = live.grants.get(key);
    if (!r) {
      r = authorize(skill.manifest, { trust, policy: live.policy, vars: { workspace: this.workspace, home: this.home, skill: skill.dir } });
      live.grants.set(key, r);
    }
    return r;
  }

  private readonly inflight = new Set<Promise<CallResult>>();

  /** Runs a skill for a caller. Never throws for the skill's failure: resolves to a CallResult. */
  call(name: string, input: unknown, options: CallOptions = {}): Promise<CallResult> {
    const p = this.callInternal(name, input, options, 0, undefined);
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private async callInternal(name: string, input: unknown, options: CallOptions, depth: number, parentCallId: string | undefined): Promise<CallResult> {
    const callId = randomUUID();
    // The policy version this call runs under, start to end, whatever a reload does meanwhile.
    const live = this.live;
    const c = options.caller ?? {};
    const trustRaw = c.trust ?? "untrusted";
    const caller: Caller = { id: typeof c.id === "string" && c.id ? c.id : "anonymous", trust: isTrustLevel(trustRaw) ? trustRaw : "untrusted", ...(typeof c.session === "string" ? { session: c.session } : {}) };
    const base = { callId, skill: name, caller: caller.id, trust: caller.trust, session: caller.session ?? null, policyVersion: live.policy.version, ...(parentCallId ? { parentCallId } : {}) };
    const call: CallState = { name, callId, started: performance.now(), caller, depth, base, live, attempts: 0, fallback: null };
    const refuse = (error: SkillError, fields: Record<string, unknown>) => {
      this.audit.event("call.denied", { ...base, code: error.code, ...fields }, "warn");
      return this.finish(call, { ok: false, error });
    };

    this.audit.event("call.start", base);
    if (this.closed) return this.finish(call, { ok: false, error: new SkillError("E_SKILL_ERROR", "the host is closed") });
    if (live.policy.audit.failMode === "closed" && !this.audit.healthy) {
      // "No action without a record": the policy refuses calls while the log cannot be written.
      return this.finish(call, { ok: false, error: new SkillError("E_PERMISSION_DENIED", `refused: the security log ${this.audit.file} cannot be written and the policy sets audit.failMode: closed`, { details: { reason: "audit-unwritable" } }) });
    }
    if (!isTrustLevel(trustRaw)) {
      const err = new SkillError("E_INPUT_INVALID", `caller.trust must be one of untrusted, user-verified, trusted, system; got ${JSON.stringify(trustRaw)}`);
      return refuse(err, { reason: err.message });
    }
    // 1 registry
    const skill = this.skills.get(name);
    if (!skill) {
      const broken = this.loadProblems.find((p) => p.dir.endsWith(`/${name}`));
      const err = broken
        ? new SkillError(broken.code, `skill "${name}" was not loaded: ${broken.message}`, { details: { issues: broken.issues } })
        : new SkillError("E_SKILL_NOT_FOUND", `no skill named "${name}"; registered: ${[...this.skills.keys()].sort().join(", ") || "none"}`);
      return this.finish(call, { ok: false, error: err });
    }

    // 2 input
    const checked = this.checkInput(skill, input);
    if (checked instanceof SkillError) return refuse(checked, { reason: checked.message });

    // 3 authorize
    const auth = this.authorizeCached(skill, caller.trust, live);
    if (!auth.ok) {
      for (const n of auth.needs) this.counters.denial(`authorize:${n.kind}`);
      return refuse(new SkillError("E_PERMISSION_DENIED", describeNeeds(name, caller.trust, auth.needs), { details: { needs: auth.needs } }), {
        needs: auth.needs.map((n) => ({ kind: n.kind, target: n.target, access: n.access ?? null, rule: n.reason })),
      });
    }

    // 4 policy: signatures, windows, concurrency, rate limits, input filters, approvals
    const log: EngineLog = (event, fields, level) => this.audit.event(event, { ...base, ...fields }, level);
    const admission = live.engine.admit({ skill: name, caller: caller.id, trust: caller.trust, manifest: skill.manifest }, skill, input, log);
    if (!admission.ok) {
      this.counters.denial(admission.rule);
      return refuse(admission.error, { rule: admission.rule, reason: admission.error.message, details: admission.error.details ?? null });
    }
    try {
      // A filter that redacted something gave a new value; otherwise the JSON made above is reused.
      const inputJson = admission.input === input ? checked : JSON.stringify(admission.input);
      return await this.execute(Object.assign(call, { skill, grant: auth.grant, log }), admission.input, inputJson);
    } finally {
      admission.release();
    }
  }

  /** Ends a call: counts it, writes call.end, builds the CallResult. */
  private finish(call: CallState, r: { ok: true; output: unknown } | { ok: false; error: SkillError }): CallResult {
    const durationMs = round(performance.now() - call.started);
    const { callId, attempts, fallback, base } = call;
    this.counters.call(call.name, r.ok ? "ok" : r.error.code, durationMs);
    if (r.ok) {
      this.audit.event("call.end", { ...base, outcome: "ok", code: null, attempts, fallback, durationMs });
      return { ok: true, callId, output: r.output, attempts, fallback, durationMs };
    }
    const error = r.error.toJSON();
    this.audit.event("call.end", { ...base, outcome: "error", code: error.code, message: error.message, attempts, fallback, durationMs }, "warn");
    return { ok: false, callId, error, attempts, fallback, durationMs };
  }

  /** Stages 5-7: attempts, fallback, output filter. */
  private async execute(call: RunningCall, input: unknown, inputJson: string): Promise<CallResult> {
    const { name, skill, base } = call;
    // 7 output: content filters on whatever produced it (the skill or its fallback)
    const done = (output: unknown): CallResult => {
      const f = call.live.engine.filter("output", output, call.log);
      if (f.blocked) {
        this.counters.denial(`filters.${f.blocked}`);
        return this.finish(call, { ok: false, error: new SkillError("E_PERMISSION_DENIED", `${name}: the output was blocked by content filter "${f.blocked}"`, { details: { rule: `filters.${f.blocked}`, filter: f.blocked } }) });
      }
      return this.finish(call, { ok: true, output: f.value });
    };
    const fail = (error: SkillError) => this.finish(call, { ok: false, error });

    // 5 execute, with retry and a deadline per attempt
    const run = await this.runAttempts(call, inputJson);
    if (!(run instanceof SkillError)) return done(run.output);
    const failure = run;

    // 6 fallback
    const fb = skill.manifest.fallback;
    if (!fb || !FALLBACK_CODES.has(failure.code)) return fail(failure);
    if ("skill" in fb) {
      call.fallback = fb.skill;
      this.audit.event("fallback.start", { ...base, fallback: fb.skill, after: failure.code });
      if (call.depth >= MAX_FALLBACK_DEPTH) {
        return fail(new SkillError("E_SKILL_ERROR", `fallback chain deeper than ${MAX_FALLBACK_DEPTH}; stopped at ${fb.skill}`, { details: { primary: failure.toJSON() } }));
      }
      const r = await this.callInternal(fb.skill, input, { caller: call.caller }, call.depth + 1, call.callId);
      if (r.ok) return done(r.output);
      return fail(new SkillError(r.error.code, `${name} failed (${failure.code}: ${failure.message}); its fallback ${fb.skill} failed too: ${r.error.message}`, { retryable: false, details: { primary: failure.toJSON(), fallback: r.error } }));
    }
    call.fallback = fb.command.join(" ");
    this.audit.event("fallback.start", { ...base, fallback: call.fallback, after: failure.code });
    try {
      return done(await this.fallbackCommand(call, fb.command));
    } catch (err) {
      const e = asSkillError(err);
      return fail(new SkillError(e.code, `${name} failed (${failure.code}: ${failure.message}); its fallback command failed too: ${e.message}`, { details: { primary: failure.toJSON(), fallback: e.toJSON() } }));
    }
  }

  /**
   * The attempts of one call, in a concurrency slot (a fallback runs outside it, so a fallback
   * skill never waits on its own parent's slot). Resolves with the output or the last error.
   */
  private async runAttempts(call: RunningCall, inputJson: string): Promise<{ output: unknown } | SkillError> {
    const { base, grant, skill } = call;
    if (this.running >= this.maxConcurrent) {
      if (this.queue.length >= this.maxQueued) {
        const err = new SkillError("E_RATE_LIMITED", `skillbox is busy: ${this.running} calls running and ${this.queue.length} waiting (maxConcurrent ${this.maxConcurrent}, maxQueued ${this.maxQueued}); try again shortly`, { details: { retryAfterMs: 100, reason: "busy" } });
        this.audit.event("call.denied", { ...base, code: err.code, reason: "busy" }, "warn");
        return err;
      }
      await new Promise<void>((resolveSlot) => this.queue.push(resolveSlot));
    }
    this.running++;
    // ${tmp} exists when the skill declares needs in it or may run processes (their HOME and default cwd).
    const usesTmp = grant.files.some((r) => r.pattern.startsWith(TMP_PLACEHOLDER)) || grant.process.length > 0;
    const tmpDir = usesTmp ? realpathSync.native(mkdtempSync(join(tmpdir(), "skillbox-"))) : join(tmpdir(), `skillbox-none-${call.callId}`);
    try {
      const { value, attempts } = await withRetry(
        skill.manifest.retry,
        (attempt) => this.attempt(call, inputJson, tmpDir, attempt),
        ({ attempt, error, retryDelayMs, willRetry }) => {
          this.audit.event("attempt.end", { ...base, attempt, outcome: "error", code: error.code, message: error.message, retryable: error.retryable, willRetry, retryDelayMs }, "warn");
        },
      );
      call.attempts = attempts;
      return { output: value };
    } catch (err) {
      call.attempts = (err as { attempts?: number }).attempts ?? call.attempts;
      return asSkillError(err);
    } finally {
      if (usesTmp) rmSync(tmpDir, { recursive: true, force: true });
      this.running--;
      this.queue.shift()?.();
    }
  }

  /** Validates the input; returns the error, or the input's JSON (made once, reused for the worker). */
  private checkInput(skill: LoadedSkill, input: unknown): SkillError | string {
    let json: string | undefined;
    try {
      json = JSON.stringify(input);
    } catch (err) {
      return new SkillError("E_INPUT_INVALID", `input is not JSON: ${(err as Error).message}`);
    }
    if (json === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
      return new SkillError("E_INPUT_INVALID", `input must be a JSON object, got ${json === undefined ? typeof input : json.slice(0, 40)}`);
    }
    if (Buffer.byteLength(json) > this.maxInputBytes) return new SkillError("E_INPUT_INVALID", `input is ${Buffer.byteLength(json)} bytes, more than the cap of ${this.maxInputBytes}`);
    const errors = skill.validateInput(input);
    if (errors.length > 0) return new SkillError("E_INPUT_INVALID", `${skill.manifest.name}: invalid input: ${errors.join("; ")}`, { details: { errors } });
    return json;
  }

  private async attempt(call: RunningCall, inputJson: string, tmpDir: string, attempt: number): Promise<unknown> {
    const { skill, grant, base, live, log } = call;
    const started = performance.now();
    this.audit.event("attempt.start", { ...base, attempt });
    let denied: PermissionDenied | undefined;
    let cancel = () => undefined as void;
    const children = new Set<ChildProcess>();
    const scope: CapabilityScope = {
      ...this.scopeBase(grant, base, attempt, tmpDir, children),
      filterRequest: (body) => {
        const f = live.engine.filter("request", body, log);
        return f.blocked ? { blocked: f.blocked } : { body: String(f.value) };
      },
      log: (level, message, fields) => this.audit.event("skill.log", { ...base, attempt, level, message, fields: capJson(fields) }),
      denied: (err) => {
        denied ??= err;
        cancel();
      },
    };
    const { limits } = grant;
    const handle = this.supervisor.run({
      code: codeOf(skill),
      inputJson,
      envJson: JSON.stringify({ workspace: this.workspace, home: this.home, skill: skill.dir, tmp: tmpDir, callId: base["callId"], attempt, trust: grant.trust }),
      memoryMb: limits.memoryMb,
      timeoutMs: limits.timeoutMs,
      outputBytes: limits.outputBytes,
      onCapability: (op, args) => dispatch(scope, op, args),
    });
    cancel = handle.cancel;
    try {
      const { outcome, cpuMs } = await withDeadline(handle.result, limits.timeoutMs, handle.cancel, skill.manifest.name);
      if (denied) throw new SkillError("E_PERMISSION_DENIED", `${skill.manifest.name}: ${denied.message}`, { details: { op: denied.op, target: denied.target, rule: denied.decision.rule } });
      const { output } = translateOutcome(outcome, limits, skill.manifest.name);
      const outErrors = skill.validateOutput(output);
      if (outErrors.length > 0) throw new SkillError("E_OUTPUT_INVALID", `${skill.manifest.name} returned invalid output: ${outErrors.join("; ")}`, { details: { errors: outErrors } });
      this.audit.event("attempt.end", { ...base, attempt, outcome: "ok", durationMs: round(performance.now() - started), cpuMs: round(cpuMs) });
      return output;
    } catch (err) {
      if (denied) throw new SkillError("E_PERMISSION_DENIED", `${skill.manifest.name}: ${denied.message}`, { details: { op: denied.op, target: denied.target, rule: denied.decision.rule } });
      throw err;
    } finally {
      // No process a skill started outlives its attempt.
      killAll(children);
    }
  }

  /** What every capability scope of one attempt shares: grant, deadline, logging. */
  private scopeBase(grant: Grant, base: Record<string, unknown>, attempt: number, tmpDir: string, children: Set<ChildProcess>) {
    return {
      grant,
      workspace: this.workspace,
      tmpDir,
      deadline: performance.now() + grant.limits.timeoutMs,
      resolve: this.resolveHost,
      children,
      record: (op: string, target: string, d: Decision, extra?: Record<string, unknown>) => {
        const inTmp = op.startsWith("fs.") && (target === tmpDir || target.startsWith(tmpDir + "/"));
        if (!d.allowed) this.counters.denial(d.rule);
        this.audit.event("capability", { ...base, attempt, op, target, decision: d.allowed ? "allow" : "deny", rule: d.rule, ...(d.allowed ? {} : { reason: d.reason }), ...(inTmp ? { tmp: true } : {}), ...extra }, d.allowed ? "info" : "warn");
      },
      logExec: (fields: Record<string, unknown>) => this.audit.event("process.exec", { ...base, attempt, ...fields }, fields["decision"] === "allow" ? "info" : "warn"),
    };
  }

  /** fallback.command: a process run checked against this skill's own process permissions. */
  private async fallbackCommand(call: RunningCall, command: string[]): Promise<unknown> {
    const { skill, grant, base } = call;
    const tmpDir = realpathSync.native(mkdtempSync(join(tmpdir(), "skillbox-")));
    const children = new Set<ChildProcess>();
    try {
      const vars = { workspace: this.workspace, home: this.home, skill: skill.dir, tmp: tmpDir };
      const [cmd, ...args] = command.map((part) => expandVars(part, vars));
      const scope = this.scopeBase(grant, base, 0, tmpDir, children);
      let run;
      try {
        run = await execCapability(scope, cmd, args, {});
      } catch (err) {
        if (err instanceof PermissionDenied) throw new SkillError("E_PERMISSION_DENIED", `fallback command refused: ${err.message}`, { details: { op: "exec", target: err.target, rule: err.decision.rule } });
        throw new SkillError("E_SKILL_ERROR", (err as Error).message);
      }
      if (run.timedOut) throw new SkillError("E_TIMEOUT", `fallback command ${command.join(" ")} did not finish within ${grant.limits.timeoutMs} ms`);
      if (run.exitCode !== 0) throw new SkillError("E_SKILL_ERROR", `fallback command ${command.join(" ")} exited with ${run.exitCode ?? run.signal}: ${run.stderr.slice(0, 500)}`);
      return { exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr };
    } finally {
      killAll(children);
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }

  /** Counts and latency percentiles per skill and outcome, denials per rule, log write failures, worker kills. */
  metrics(): MetricsSnapshot {
    return this.counters.snapshot();
  }

  /** The same figures in Prometheus text format, for an application's /metrics endpoint (content type: `prometheusContentType`). */
  prometheus(): Promise<string> {
    return this.counters.prometheus();
  }

  get prometheusContentType(): string {
    return this.counters.contentType;
  }

  /** The sandbox pool: worker process ids, workers killed so far, attempts in flight. */
  sandboxStats(): { workerPids: number[]; kills: number; inflight: number } {
    return this.supervisor.stats();
  }

  /**
   * Loads the policy file again. The new version is validated and self-tested before it replaces
   * the live one; an invalid change keeps the old version in force and is reported. Calls in
   * flight finish under the version they started with. Returns whether the new version is live.
   */
  reloadPolicy(): boolean {
    if (!this.policyFile) return false;
    const before = this.live.policy.version;
    try {
      const policy = loadPolicyFile(this.policyFile);
      if (policy.version === before) return false;
      selfTest(policy, (n) => this.skills.get(n), { workspace: this.workspace, home: this.home }, this.warn);
      this.live = makeLive(policy, this.stateDir, this.clock);
      snapshotPolicy(policy, this.stateDir);
      this.audit.event("policy.reload", { ...SYSTEM_FIELDS, outcome: "ok", from: before, policyVersion: policy.version });
      return true;
    } catch (err) {
      const e = asSkillError(err);
      this.audit.event("policy.reload", { ...SYSTEM_FIELDS, outcome: "error", code: e.code, message: e.message, policyVersion: before }, "warn");
      this.warn(`skillbox: the changed policy ${this.policyFile} was not loaded; ${before} stays in force:\n  ${e.message.split("\n").join("\n  ")}`);
      return false;
    }
  }

  /**
   * Watches the policy file and the skills folder; changes are validated before they replace what
   * is live (see reload() and reloadPolicy()). `onChange` hears what changed. Returns a stop function.
   */
  watch(onChange: (what: "skills" | "policy") => void = () => undefined, debounceMs = 150): () => void {
    const watchers: FSWatcher[] = [];
    const timers = new Map<string, NodeJS.Timeout>();
    const later = (what: "skills" | "policy", fn: () => boolean) => {
      clearTimeout(timers.get(what));
      timers.set(
        what,
        setTimeout(() => {
          if (fn()) onChange(what);
        }, debounceMs),
      );
    };
    const add = (path: string, opts: { recursive?: boolean }, fn: (name: string | null) => void) => {
      try {
        const w = watch(path, opts, (_e, name) => fn(name));
        w.on("error", () => undefined);
        watchers.push(w);
      } catch {
        this.warn(`skillbox: cannot watch ${path}; changes there are not picked up`);
      }
    };
    add(this.skillsDir, { recursive: true }, () => later("skills", () => this.reload()));
    if (this.policyFile) {
      // Editors often replace the file: watch its folder and pick out its name.
      const file = this.policyFile;
      add(dirname(file), {}, (name) => {
        if (name === null || name === basename(file)) later("policy", () => this.reloadPolicy());
      });
    }
    return () => {
      for (const t of timers.values()) clearTimeout(t);
      for (const w of watchers) w.close();
    };
  }

  /** Lets calls in flight finish (each ends by its own deadline), stops the sandbox workers and flushes the security log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await this.supervisor.close();
    if (this.audit.failures > 0) this.warn(`skillbox: ${this.audit.failures} security log event(s) could not be written to ${this.audit.file}`);
    await this.audit.close();
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

function info(s: LoadedSkill): SkillInfo {
  const fb = s.manifest.fallback;
  return {
    name: s.manifest.name,
    version: s.manifest.version,
    description: s.manifest.description,
    dir: s.dir,
    entrySha256: s.entrySha256,
    permissions: s.manifest.permissions,
    limits: s.manifest.limits,
    fallback: fb ? ("skill" in fb ? fb.skill : fb.command.join(" ")) : null,
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function capJson(v: unknown): unknown {
  const s = JSON.stringify(v ?? null);
  return s.length > 8192 ? { truncated: true, preview: s.slice(0, 512) } : v;
}

function safeRealpath(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return p;
  }
}
