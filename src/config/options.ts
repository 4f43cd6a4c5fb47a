/**
 * Where configuration enters skillbox: every option of a host, its default and its validation,
 * in one place, so the host, the CLI, the sandbox supervisor and the audit tools cannot disagree
 * on a default. A bad option is refused at the door with what was expected and what was given
 * (p-retry style), never silently clamped.
 */
import { existsSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { systemResolver, type Resolver } from "../capabilities/net.js";
import { InputInvalidError, type SkillError } from "../errors.js";
import type { ApprovalCaps } from "../policy/engine/approvals.js";
import { isPostgresUrl } from "../state/spec.js";
import type { StateStore } from "../state/store.js";
import { DEFAULTS, defaultWorkers } from "./defaults.js";

/** Environment variable holding the security log's HMAC chain key (host, `skillbox audit verify`). */
export const AUDIT_KEY_ENV = "SKILLBOX_AUDIT_KEY";

export { DEFAULTS, defaultWorkers } from "./defaults.js";

export interface AuditOptions {
  /** the JSON-lines file; @default ".skillbox/audit.jsonl" in the workspace */
  file?: string;
  /** HMAC key for the hash chain; @default process.env.SKILLBOX_AUDIT_KEY */
  key?: string;
  /** also store the events in PostgreSQL (a connection URL) */
  postgres?: string;
  /** PostgreSQL table name */
  table?: string;
  /** also record the chain's head in this file, outside the log; @default the policy's audit.anchor, else none */
  anchor?: string;
  /** Ed25519 private key file signing checkpoints and the anchor; @default the policy's audit.signingKey, else the HMAC key */
  signingKeyFile?: string;
  /** a signed checkpoint line after this many lines and at close; @default the policy's audit.checkpointEvery, else 1000 */
  checkpointEveryLines?: number;
  /** how long close() waits for events still queued for PostgreSQL; @default 5000 */
  postgresCloseTimeoutMs?: number;
}

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
  audit?: string | AuditOptions;
  /**
   * Attempts that run at once, each in its own sandbox worker process (one more worker is kept
   * started as a spare); further attempts wait, in order. @default max(2, number of cores)
   */
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
  /**
   * Where shared state lives (rate-limit buckets, concurrency leases, approvals, tokens, policy
   * versions): a folder (an embedded database `state.db` in it, shared by every process on this
   * machine), a `postgres://` URL (shared by every host using that database), `memory` (this
   * process only), or a StateStore the application opened (it stays the application's to close).
   * @default "<workspace>/.skillbox"
   */
  state?: string | StateStore;
  /** older name of `state` for a folder */
  stateDir?: string;
  /** a concurrency lease not renewed this long belongs to a dead host and lapses; @default 20000 */
  leaseTtlMs?: number;
  /** pending approval requests allowed at once; @default { perCaller: 20, perSkill: 200 } */
  approvalCaps?: Partial<ApprovalCaps>;
  /** who loads policies through this host, recorded with each policy version; @default "user@hostname" */
  loadedBy?: string;
  /** epoch milliseconds for rate limits, time windows and approvals; @default Date.now */
  clock?: () => number;
  /** DNS resolution for ctx.fetch (host name -> addresses); @default the system resolver */
  resolveHost?: Resolver;
  /** start the sandbox workers at open, ahead of the first call; @default true */
  warm?: boolean;
  /** warnings (skills skipped, log failures); @default stderr */
  onWarning?: (message: string) => void;
}

/** Every option decided: absolute paths, numbers checked, defaults filled in. */
export interface ResolvedHostOptions {
  /** real path */
  workspace: string;
  skillsDir: string;
  /** the policy file given or found in the workspace; undefined: the built-in policy */
  policyFile: string | undefined;
  /** the state store: an absolute folder, a postgres:// URL, "memory", or the application's store */
  state: string | StateStore;
  /** the state folder (the embedded store's, else <workspace>/.skillbox): older file state is imported from here */
  stateDir: string;
  leaseTtlMs: number | undefined;
  approvalCaps: ApprovalCaps;
  loadedBy: string | undefined;
  audit: { file: string; key?: string; postgres?: string; table?: string; anchor?: string; signingKeyFile?: string; checkpointEveryLines?: number; postgresCloseTimeoutMs?: number };
  workers: number;
  pool: { perSkill: number; max: number };
  maxConcurrent: number;
  maxQueued: number;
  maxInputBytes: number;
  clock: () => number;
  resolveHost: Resolver;
  warm: boolean;
  onWarning: (message: string) => void;
}

/** The audit chain key from the environment, the default for every tool that writes or verifies the log. */
export function auditKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[AUDIT_KEY_ENV] ?? undefined;
}

/**
 * Fills in and checks every option. Throws SkillError E_INPUT_INVALID naming the option, e.g.
 * ``Expected `maxConcurrent` to be a positive integer, got `0` ``. `exists` decides whether the
 * implicit policy file is there (injected so this stays testable without files).
 */
export function resolveHostOptions(options: SkillHostOptions = {}, exists: (path: string) => boolean = existsSync): ResolvedHostOptions {
  if (options === null || typeof options !== "object") throw invalid("options", "an object", options);
  let workspace: string;
  const workspaceGiven = optionalString("workspace", options.workspace);
  try {
    workspace = realpathSync.native(resolve(workspaceGiven ?? process.cwd()));
  } catch {
    throw new InputInvalidError(`workspace ${workspaceGiven} does not exist`, { details: { option: "workspace" } });
  }
  const policyGiven = optionalString("policy", options.policy);
  // skillbox.policy.yaml, else skillbox.policy.toml (same schema).
  const implicit = [DEFAULTS.policyFileName, DEFAULTS.policyFileName.replace(/\.yaml$/, ".toml")].map((f) => resolve(workspace, f)).find((f) => exists(f));
  const policyFile = policyGiven !== undefined ? resolve(policyGiven) : implicit;

  const audit = typeof options.audit === "string" ? { file: options.audit } : options.audit;
  if (audit !== undefined && (audit === null || typeof audit !== "object")) throw invalid("audit", "a file path or an object", audit);
  const key = optionalString("audit.key", audit?.key) ?? auditKeyFromEnv();
  const postgres = optionalString("audit.postgres", audit?.postgres);
  const table = optionalString("audit.table", audit?.table);
  const anchor = optionalString("audit.anchor", audit?.anchor);
  const signingKeyFile = optionalString("audit.signingKeyFile", audit?.signingKeyFile);
  const checkpointEveryLines = audit?.checkpointEveryLines === undefined ? undefined : positiveInteger("audit.checkpointEveryLines", audit.checkpointEveryLines);
  const postgresCloseTimeoutMs = audit?.postgresCloseTimeoutMs === undefined ? undefined : nonNegativeInteger("audit.postgresCloseTimeoutMs", audit.postgresCloseTimeoutMs);

  const pool = options.pool;
  if (pool !== undefined && (pool === null || typeof pool !== "object")) throw invalid("pool", "an object", pool);

  const stateGiven = options.state;
  if (stateGiven !== undefined && typeof stateGiven !== "string" && (stateGiven === null || typeof stateGiven !== "object" || typeof (stateGiven as StateStore).takeToken !== "function")) {
    throw invalid("state", 'a folder, a postgres:// URL, "memory" or a StateStore', stateGiven);
  }
  const stateSpec = stateGiven ?? optionalString("stateDir", options.stateDir) ?? DEFAULTS.stateDir;
  const stateIsFolder = typeof stateSpec === "string" && stateSpec !== "memory" && !isPostgresUrl(stateSpec);
  const caps = options.approvalCaps;
  if (caps !== undefined && (caps === null || typeof caps !== "object")) throw invalid("approvalCaps", "an object", caps);

  return {
    workspace,
    skillsDir: resolve(optionalString("skillsDir", options.skillsDir) ?? DEFAULTS.skillsDir),
    policyFile,
    state: stateIsFolder ? resolve(workspace, stateSpec as string) : stateSpec,
    stateDir: resolve(workspace, stateIsFolder ? (stateSpec as string) : DEFAULTS.stateDir),
    leaseTtlMs: options.leaseTtlMs === undefined ? undefined : positiveInteger("leaseTtlMs", options.leaseTtlMs),
    approvalCaps: {
      perCaller: positiveInteger("approvalCaps.perCaller", caps?.perCaller ?? DEFAULTS.approvalCaps.perCaller),
      perSkill: positiveInteger("approvalCaps.perSkill", caps?.perSkill ?? DEFAULTS.approvalCaps.perSkill),
    },
    loadedBy: optionalString("loadedBy", options.loadedBy),
    audit: {
      file: resolve(workspace, optionalString("audit.file", audit?.file) ?? DEFAULTS.auditFile),
      ...(key !== undefined ? { key } : {}),
      ...(postgres !== undefined ? { postgres } : {}),
      ...(table !== undefined ? { table } : {}),
      ...(anchor !== undefined ? { anchor: resolve(workspace, anchor) } : {}),
      ...(signingKeyFile !== undefined ? { signingKeyFile: resolve(workspace, signingKeyFile) } : {}),
      ...(checkpointEveryLines !== undefined ? { checkpointEveryLines } : {}),
      ...(postgresCloseTimeoutMs !== undefined ? { postgresCloseTimeoutMs } : {}),
    },
    workers: positiveInteger("workers", options.workers ?? defaultWorkers()),
    pool: {
      perSkill: nonNegativeInteger("pool.perSkill", pool?.perSkill ?? DEFAULTS.pool.perSkill),
      max: nonNegativeInteger("pool.max", pool?.max ?? DEFAULTS.pool.max),
    },
    maxConcurrent: positiveInteger("maxConcurrent", options.maxConcurrent ?? DEFAULTS.maxConcurrent),
    maxQueued: nonNegativeInteger("maxQueued", options.maxQueued ?? DEFAULTS.maxQueued),
    maxInputBytes: positiveInteger("maxInputBytes", options.maxInputBytes ?? DEFAULTS.maxInputBytes),
    clock: optionalFunction("clock", options.clock) ?? Date.now,
    resolveHost: optionalFunction("resolveHost", options.resolveHost) ?? systemResolver,
    warm: optionalBoolean("warm", options.warm) ?? true,
    onWarning: optionalFunction("onWarning", options.onWarning) ?? ((m: string) => void process.stderr.write(m + "\n")),
  };
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "object" && value !== null) return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

function invalid(name: string, expected: string, value: unknown): SkillError {
  return new InputInvalidError(`Expected \`${name}\` to be ${expected}, got \`${show(value)}\``, { details: { option: name } });
}

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) throw invalid(name, "a positive integer", value);
  return value;
}

function nonNegativeInteger(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalid(name, "a non-negative integer", value);
  return value;
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw invalid(name, "a non-empty string", value);
  return value;
}

function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw invalid(name, "a boolean", value);
  return value;
}

function optionalFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw invalid(name, "a function", value);
  return value;
}
