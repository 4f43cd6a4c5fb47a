/**
 * SkillHost, the one object an application holds: a thin facade over the registry (registry/),
 * the call pipeline (call/pipeline.ts), the live policy (policy/live.ts), the sandbox supervisor
 * and the security log. How one call runs is in call/pipeline.ts.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { AuditLog, auditFromPolicy } from "./audit/log.js";
import { BWRAP_INSTALL_HINT, detectBwrap } from "./capabilities/confine.js";
import { bwrapWorker } from "./sandbox/confine-worker.js";
import { HostControlPlane, type ControlPlaneSources } from "./capabilities/control-plane.js";
import { Metrics, type MetricsSnapshot } from "./audit/metrics.js";
import { dropGrants, grantFor } from "./call/authorize.js";
import type { CallOptions } from "./call/caller.js";
import type { CallContext } from "./call/context.js";
import { SYSTEM_FIELDS } from "./call/events.js";
import { runCall } from "./call/pipeline.js";
import { assertRuntime } from "./runtime.js";
import type { CallResult } from "./call/result.js";
import { DEFAULTS, resolveHostOptions, type ResolvedHostOptions, type SkillHostOptions } from "./config/options.js";
import { asSkillError, InputInvalidError, SkillError, SkillNotFoundError } from "./errors.js";
import { Slots } from "./execution/slots.js";
import { builtinPolicy, loadPolicyFile } from "./policy/load.js";
import { makeLive, selfTest, versionRecord, type LivePolicy } from "./policy/live.js";
import type { AuthorizeResult, Policy, TrustLevel } from "./policy/model.js";
import { safeRealpath, SkillRegistry, type LoadProblem, type SkillInfo, type SkillSource } from "./registry/registry.js";
import { watchSources } from "./registry/watch.js";
import { Supervisor } from "./sandbox/supervisor.js";
import { importLegacyState, localIdentity, openStateStore } from "./state/open.js";
import type { Approval, StateStore } from "./state/store.js";
import { toolDefinitions, type ToolFormat } from "./tools.js";

export type { Caller, CallOptions, CallProgress } from "./call/caller.js";
export type { CallResult } from "./call/result.js";
export type { SkillHostOptions } from "./config/options.js";
export type { LoadProblem, SkillInfo, SkillSource } from "./registry/registry.js";

export class SkillHost {
  readonly workspace: string;
  /** the state folder (the embedded store's; older file state is imported from it) */
  readonly stateDir: string;
  /** buckets, leases, approvals, tokens and policy versions, shared with every host using the same store */
  readonly state: StateStore;
  private readonly loadedBy: string;
  /** the folder scanned at open and by reload() */
  readonly skillsDir: string;
  readonly audit: AuditLog;
  private live: LivePolicy;
  private readonly options: ResolvedHostOptions;
  private readonly registry: SkillRegistry;
  private readonly counters: Metrics;
  private readonly supervisor: Supervisor;
  private readonly context: CallContext;
  private readonly home: string;
  private readonly inflight = new Set<Promise<CallResult>>();
  /** one per call in flight: close() cancels them */
  private readonly controllers = new Set<AbortController>();
  private closed = false;
  /** what no skill may change or see; grants hold this object, so it is refreshed in place */
  private readonly controlPlane: HostControlPlane;

  private constructor(options: ResolvedHostOptions, policy: Policy, state: StateStore) {
    this.options = options;
    this.workspace = options.workspace;
    this.stateDir = options.stateDir;
    this.state = state;
    this.loadedBy = options.loadedBy ?? localIdentity();
    this.skillsDir = options.skillsDir;
    this.home = safeRealpath(homedir());
    this.live = this.makeLive(policy);
    this.audit = new AuditLog({
      ...auditFromPolicy(policy.audit),
      ...options.audit,
      redact: policy.audit.redact,
      onError: options.onWarning,
      failMode: () => (this.live ?? { policy }).policy.audit.failMode,
    });
    this.supervisor = new Supervisor({ workers: options.workers, pool: options.pool, onWarning: options.onWarning });
    this.counters = new Metrics(
      () => this.audit.failures,
      () => this.supervisor.kills,
    );
    this.registry = new SkillRegistry(options.skillsDir, (name) => dropGrants(this.live, name), options.onWarning);
    this.controlPlane = new HostControlPlane(this.controlPlaneSources());
    const counters = this.counters;
    this.context = {
      workspace: this.workspace,
      home: this.home,
      resolveHost: options.resolveHost,
      supervisor: this.supervisor,
      slots: new Slots(options.maxConcurrent, options.maxQueued),
      denial: (rule) => counters.denial(rule),
      controlPlane: this.controlPlane,
      registry: this.registry,
      audit: this.audit,
      counters,
      maxInputBytes: options.maxInputBytes,
      live: () => this.live,
      closed: () => this.closed,
    };
  }

  /**
   * Opens a host: checks the options (a bad one: E_INPUT_INVALID naming it), loads the policy
   * (invalid: E_POLICY_INVALID) and every skill folder (broken ones are reported and skipped).
   */
  static async open(options: SkillHostOptions = {}): Promise<SkillHost> {
    // First, before any worker starts: the wrong Node or a missing native build fails here, once, clearly.
    assertRuntime();
    const resolved = resolveHostOptions(options);
    const policy = resolved.policyFile ? loadPolicyFile(resolved.policyFile) : builtinPolicy();
    const given = typeof resolved.state === "string" ? undefined : resolved.state;
    let state: StateStore;
    try {
      state =
        given ??
        (await openStateStore(resolved.state as string, {
          workspace: resolved.workspace,
          ...(resolved.leaseTtlMs !== undefined ? { leaseTtlMs: resolved.leaseTtlMs } : {}),
          onError: (e) => resolved.onWarning(`skillbox: state store: ${e.message}`),
        }));
    } catch (err) {
      throw new InputInvalidError((err as Error).message, { details: { option: "state" } });
    }
    const host = new SkillHost(resolved, policy, state);
    await host.confineWorkers();
    host.reload();
    try {
      selfTest(policy, (n) => host.registry.get(n), { workspace: host.workspace, home: host.home }, resolved.onWarning);
      if (!given && state.kind !== "memory") await importLegacyState(state, resolved.stateDir, resolved.onWarning);
      await host.recordVersion(policy);
    } catch (err) {
      await host.audit.close();
      if (!given) await state.close();
      throw err;
    }
    await host.warnUnconfined();
    if (resolved.warm) await host.supervisor.warm();
    return host;
  }

  /**
   * Starts the sandbox workers (and their pools) ahead of the first call. open() does it unless
   * `warm: false`; a server that must answer its client first (MCP) calls it afterwards.
   */
  async warm(): Promise<void> {
    await this.supervisor.warm();
  }

  /** Skill folders that could not be loaded at the last scan, and why. */
  get loadProblems(): LoadProblem[] {
    return this.registry.loadProblems;
  }

  /**
   * Rescans the skills folder: new folders are added, changed ones reloaded, removed ones
   * dropped. A folder that no longer loads is reported and keeps its last good version.
   * Skills registered from memory are kept. Returns whether the set of skills changed.
   */
  reload(): boolean {
    const changed = this.registry.rescan();
    this.controlPlane.refresh(this.controlPlaneSources());
    return changed;
  }

  /** Adds a skill from a folder, or from a manifest object plus module sources. Throws on an invalid skill. */
  register(source: string | SkillSource): SkillInfo {
    const added = this.registry.register(source);
    this.controlPlane.refresh(this.controlPlaneSources());
    return added;
  }

  /** The paths skills may never change (policy, skills, keys) or see (state folder, security log). */
  private controlPlaneSources(): ControlPlaneSources {
    const skillDirs = [this.skillsDir, ...(this.registry?.all() ?? []).filter((s) => !s.dir.startsWith("/registered/")).map((s) => s.dir)];
    return { workspace: this.workspace, policyFile: this.options.policyFile, skillDirs, stateDir: this.stateDir, auditFiles: this.audit.controlFiles };
  }

  /**
   * Where bwrap works and the policy does not turn the sandbox off, every worker process runs
   * inside it (no network, its own namespaces, only node and the package visible). Otherwise the
   * workers run unconfined, said by warnUnconfined's one warning (not under `off`: the policy's choice).
   */
  private async confineWorkers(): Promise<void> {
    if (this.live.policy.process.sandbox === "off") return;
    const s = await detectBwrap();
    if (s.available) this.supervisor.confine(bwrapWorker(s.path));
  }

  /** One warning at start when the sandbox workers, and processes skills may start, cannot be confined here. */
  private async warnUnconfined(): Promise<void> {
    const mode = this.live.policy.process.sandbox;
    if (mode === "off") return;
    const s = await detectBwrap();
    if (s.available) return;
    const runsProcesses = this.registry.all().some((s) => s.manifest.permissions.process.length > 0 || (s.manifest.fallback !== undefined && "command" in s.manifest.fallback));
    const workers = "sandbox worker processes run unconfined";
    this.options.onWarning(
      !runsProcesses
        ? `skillbox: warning: ${workers}: ${s.reason}; ${BWRAP_INSTALL_HINT}`
        : mode === "required"
          ? `skillbox: warning: processes started by skills will be refused: the policy requires a sandbox (process.sandbox: required) and ${s.reason}; ${workers}; ${BWRAP_INSTALL_HINT}`
          : `skillbox: warning: processes started by skills run unconfined (sandbox "none"), and so do ${workers.replace(" run unconfined", "")}: ${s.reason}; ${BWRAP_INSTALL_HINT}`,
    );
  }

  list(): SkillInfo[] {
    return this.registry.list();
  }

  /** Skills the given trust level may run, as tool definitions for a model API or MCP. */
  tools(format: ToolFormat, options: { trust?: TrustLevel } = {}): unknown[] {
    const trust = options.trust ?? "untrusted";
    const live = this.live;
    const allowed = this.registry.all().filter((s) => grantFor(live, s, trust, this.context).ok && live.engine.signatureFor(s, trust)?.valid !== false);
    return toolDefinitions(
      format,
      allowed.map((s) => s.manifest),
    );
  }

  /** Decides whether a skill may run at a trust level, without running it. */
  authorize(name: string, trust: TrustLevel): AuthorizeResult {
    const skill = this.registry.get(name);
    if (!skill) throw new SkillNotFoundError(`no skill named "${name}"`);
    return grantFor(this.live, skill, trust, this.context);
  }

  /**
   * Runs a skill for a caller. Never throws and never rejects: every end, a fault inside skillbox
   * included, is a CallResult. `options.signal` cancels the call (E_CANCELLED); so does close().
   */
  call(name: string, input: unknown, options: CallOptions = {}): Promise<CallResult> {
    // Each call gets its own controller: close() aborts it, and so does the caller's signal.
    const controller = new AbortController();
    const given = options.signal instanceof AbortSignal ? options.signal : undefined;
    const follow = () => controller.abort(given?.reason);
    if (given?.aborted) follow();
    else given?.addEventListener("abort", follow, { once: true });
    const p = runCall(this.context, name, input, { ...options, signal: controller.signal });
    this.inflight.add(p);
    this.controllers.add(controller);
    // Both branches handled: bookkeeping can never leave a rejected promise behind.
    const forget = () => {
      this.inflight.delete(p);
      this.controllers.delete(controller);
      given?.removeEventListener("abort", follow);
    };
    p.then(forget, forget);
    return p;
  }

  /** The policy in force. */
  get policy(): Policy {
    return this.live.policy;
  }

  private makeLive(policy: Policy): LivePolicy {
    // The engine reads no environment and no clock of its own: both come from here.
    return makeLive(policy, { state: this.state, clock: this.options.clock, secret: (name) => process.env[name], approvalCaps: this.options.approvalCaps });
  }

  /** Records a policy version in the state store; a store that fails is reported, the policy stays live. */
  private async recordVersion(policy: Policy): Promise<void> {
    const v = versionRecord(policy, this.options.clock(), this.loadedBy);
    if (!v) return;
    try {
      await this.state.recordPolicyVersion(v);
    } catch (err) {
      this.options.onWarning(`skillbox: could not record policy version ${policy.version} in the state store: ${(err as Error).message}`);
    }
  }

  /** Pending and decided approvals (newest first), from the state store every host shares. */
  approvals(options: { limit?: number } = {}): Promise<Approval[]> {
    return this.state.listApprovals(this.options.clock(), options.limit);
  }

  /** Approves or denies a pending approval; the decision is logged. Rejects with E_INPUT_INVALID for an unknown or already decided id. */
  async decideApproval(id: string, decision: "approve" | "deny", options: { by?: string; reason?: string } = {}): Promise<Approval> {
    let a: Approval;
    try {
      a = await this.state.decideApproval(id, decision === "approve" ? "approved" : "denied", options.by ?? "api", options.reason, this.options.clock());
    } catch (err) {
      // An unknown or already decided id is a wrong request, not a failure of the host.
      throw err instanceof SkillError ? err : new InputInvalidError((err as Error).message, { cause: err });
    }
    this.audit.event("approval.decided", {
      ...SYSTEM_FIELDS,
      approvalId: a.id,
      decision: a.status,
      by: a.decidedBy,
      reason: a.reason ?? null,
      skill: a.skill,
      caller: a.caller,
      policyVersion: this.policy.version,
    });
    return a;
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

  /** The sandbox pool: worker process ids (all, and those running an attempt), workers killed and recycled so far, attempts running and waiting. */
  sandboxStats(): ReturnType<Supervisor["stats"]> {
    return this.supervisor.stats();
  }

  /**
   * Loads the policy file again. The new version is validated and self-tested before it replaces
   * the live one; an invalid change keeps the old version in force and is reported. Calls in
   * flight finish under the version they started with. Returns whether the new version is live.
   */
  reloadPolicy(): boolean {
    const file = this.policyPath();
    if (!file) return false;
    const before = this.live.policy.version;
    try {
      const policy = loadPolicyFile(file);
      if (policy.version === before) return false;
      selfTest(policy, (n) => this.registry.get(n), { workspace: this.workspace, home: this.home }, this.options.onWarning);
      this.live = this.makeLive(policy);
      void this.recordVersion(policy);
      this.audit.event("policy.reload", { ...SYSTEM_FIELDS, outcome: "ok", from: before, policyVersion: policy.version });
      return true;
    } catch (err) {
      const e = asSkillError(err);
      this.audit.event("policy.reload", { ...SYSTEM_FIELDS, outcome: "error", code: e.code, message: e.message, policyVersion: before }, "warn");
      this.options.onWarning(`skillbox: the changed policy ${file} was not loaded; ${before} stays in force:\n  ${e.message.split("\n").join("\n  ")}`);
      return false;
    }
  }

  /**
   * Watches the policy file and the skills folder; changes are validated before they replace what
   * is live (see reload() and reloadPolicy()). `onChange` hears what changed. Returns a stop function.
   */
  watch(onChange: (what: "skills" | "policy") => void = () => undefined, debounceMs = 150): () => void {
    return watchSources({
      skillsDir: this.skillsDir,
      // With no policy file yet, watch for the workspace's: one created later is picked up.
      policyFile: this.policyPath() ?? join(this.workspace, DEFAULTS.policyFileName),
      reload: (what) => (what === "skills" ? this.reload() : this.reloadPolicy()),
      onChange,
      debounceMs,
      warn: this.options.onWarning,
    });
  }

  /** The policy file given to open(), else the workspace's skillbox.policy.yaml (or .toml) if it exists now. */
  private policyPath(): string | undefined {
    if (this.options.policyFile) return this.options.policyFile;
    return [DEFAULTS.policyFileName, DEFAULTS.policyFileName.replace(/\.yaml$/, ".toml")].map((f) => join(this.workspace, f)).find((f) => existsSync(f));
  }

  /**
   * Cancels the calls in flight (each ends at once as E_CANCELLED, nothing retried, no fallback,
   * its processes killed), stops the sandbox workers and flushes the security log.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.controllers) c.abort(new Error("the host is shutting down"));
    await Promise.allSettled([...this.inflight]);
    await this.supervisor.close();
    if (this.audit.failures > 0) this.options.onWarning(`skillbox: ${this.audit.failures} security log event(s) could not be written to ${this.audit.file}`);
    await this.audit.close();
    if (this.state !== this.options.state) await this.state.close();
  }
}
