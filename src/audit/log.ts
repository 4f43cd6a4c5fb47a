import { readFileSync } from "node:fs";
import pino, { type Logger } from "pino";
import { SkillError } from "../errors.js";
import { PgSink, type LineSink } from "./pg-sink.js";
import { OUTAGE_CONSEQUENCE } from "./file-writer.js";
import { ChainSink } from "./sink.js";

export interface AuditOptions {
  /** JSON-lines file; @default ".skillbox/audit.jsonl" in the workspace */
  file: string;
  /** HMAC key for the chain; @default process.env.SKILLBOX_AUDIT_KEY */
  key?: string;
  /** also store the events, with the same chain, in PostgreSQL (a connection URL) */
  postgres?: string;
  /** the PostgreSQL table; @default "skillbox_audit" */
  table?: string;
  /** how long close() waits for events still queued for PostgreSQL; @default 5000 */
  postgresCloseTimeoutMs?: number;
  /** more paths to remove from every event (pino redact syntax), e.g. from the policy's audit.redact */
  redact?: string[];
  /** where write failures are reported; @default process.stderr */
  onError?: (message: string) => void;
  /** the policy's audit.failMode, read when a failure is reported (it may change on reload); @default "open" */
  failMode?: () => "open" | "closed";
  /** also record the chain's head here, outside the log (a file on another volume or host); @default none */
  anchor?: string;
  /** Ed25519 private key (PEM, as `skillbox keygen` writes it) that signs checkpoints and the anchor; @default the HMAC key, if any */
  signingKeyPem?: string;
  /** the same, read from this file */
  signingKeyFile?: string;
  /** a signed log.checkpoint line after this many lines (and at close); @default 1000 */
  checkpointEveryLines?: number;
  /** and at least this often while events are written; @default 10000 */
  checkpointEveryMs?: number;
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new SkillError("E_POLICY_INVALID", `audit signing key ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The policy's audit section as log options (the API's options override them). */
export function auditFromPolicy(a: { anchor?: string; signingKey?: string; checkpointEvery?: number }): Pick<AuditOptions, "anchor" | "signingKeyFile" | "checkpointEveryLines"> {
  return {
    ...(a.anchor !== undefined ? { anchor: a.anchor } : {}),
    ...(a.signingKey !== undefined ? { signingKeyFile: a.signingKey } : {}),
    ...(a.checkpointEvery !== undefined ? { checkpointEveryLines: a.checkpointEvery } : {}),
  };
}

/** Keys the log itself writes on every line. */
const RESERVED_KEYS = new Set(["seq", "prev", "time", "level", "event", "msg"]);

/** Paths pino removes before a line is written (and hashed). */
const REDACT = [
  "headers.authorization",
  "headers.Authorization",
  "headers.cookie",
  "headers.Cookie",
  "request.headers.authorization",
  "request.headers.cookie",
  "fields.password",
  "fields.token",
  "fields.secret",
  "fields.apiKey",
  "fields.authorization",
];

/** Environment variables whose values must never appear in the log, wherever they turn up. */
const SECRET_ENV = /(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE|CREDENTIAL|AUTH|SESSION|COOKIE|_KEY$)/i;

function secretValues(env: NodeJS.ProcessEnv): RegExp | undefined {
  const values = Object.entries(env)
    .filter(([k, v]) => SECRET_ENV.test(k) && typeof v === "string" && v.length >= 8)
    .map(([, v]) => JSON.stringify(v).slice(1, -1)) // as it appears inside a JSON string
    .sort((a, b) => b.length - a.length)
    .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return values.length ? new RegExp(values.join("|"), "g") : undefined;
}

/**
 * The security log: one JSON line per event, through pino, each carrying `seq` and `prev`
 * (hash of the previous line, HMAC with a key). Writes never throw into a call: a failing
 * sink is counted and reported on stderr (once).
 */
export class AuditLog {
  readonly file: string;
  private readonly logger: Logger;
  private readonly sinks: LineSink[];
  private readonly onError: (message: string) => void;
  private readonly failMode: () => "open" | "closed";
  private failedEarly = 0;
  private readonly secrets: RegExp | undefined;

  private readonly extraControlFiles: string[];

  constructor(options: AuditOptions) {
    this.file = options.file;
    this.extraControlFiles = [options.anchor, options.anchor && `${options.anchor}.${process.pid}.tmp`, options.signingKeyFile].filter((f): f is string => typeof f === "string" && f !== "");
    const key = options.key ?? process.env["SKILLBOX_AUDIT_KEY"] ?? undefined;
    this.onError = options.onError ?? ((m) => process.stderr.write(m + "\n"));
    this.failMode = options.failMode ?? (() => "open");
    this.secrets = secretValues(process.env);
    const pem = options.signingKeyPem ?? (options.signingKeyFile !== undefined ? readKeyFile(options.signingKeyFile) : undefined);
    const signer = pem !== undefined ? ({ alg: "ed25519", pem } as const) : key ? ({ alg: "hmac-sha256", key } as const) : undefined;
    let file: ChainSink;
    try {
      file = new ChainSink(this.file, { file: this.file, key, signer, anchor: options.anchor, checkpointEveryLines: options.checkpointEveryLines, checkpointEveryMs: options.checkpointEveryMs }, (m) =>
        this.onError(this.withConsequence(m)),
      );
    } catch (err) {
      throw new SkillError("E_POLICY_INVALID", (err as Error).message);
    }
    this.sinks = [file];
    if (options.postgres) {
      this.sinks.push(new PgSink({ url: options.postgres, table: options.table ?? "skillbox_audit", key, file: this.file, closeTimeoutMs: options.postgresCloseTimeoutMs, onStatus: this.onError }));
    }
    const sink = {
      write: (line: string) => {
        let json = line.endsWith("\n") ? line.slice(0, -1) : line;
        if (this.secrets) json = json.replace(this.secrets, "[redacted]");
        for (const s of this.sinks) s.write(json);
      },
    };
    this.logger = pino(
      {
        base: null,
        messageKey: "msg",
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: [...REDACT, ...(options.redact ?? [])], censor: "[redacted]" },
      },
      sink,
    );
  }

  /**
   * Every file of this log a skill must never read or change: the log, its lock, the PostgreSQL
   * queue file, the anchor, the checkpoint signing key.
   */
  get controlFiles(): string[] {
    return [this.file, `${this.file}.lck`, `${this.file}.lck.break`, `${this.file}.pg-queue.jsonl`, ...this.extraControlFiles];
  }

  /** log lines that could not be written */
  get failures(): number {
    return this.sinks.reduce((n, s) => n + s.failed, this.failedEarly);
  }

  /**
   * false while the log file cannot be written (its last write failed or it could not be opened).
   * The file is the record (PostgreSQL holds a copy, re-sent after an outage), so it alone decides.
   */
  get healthy(): boolean {
    return this.sinks[0]!.healthy;
  }

  private readonly reportedSinks = new Set<string>();
  /** A file outage's warning says what happens to calls under the policy in force: failMode closed refuses them. */
  private withConsequence(message: string): string {
    return this.failMode() === "closed"
      ? message.replace(OUTAGE_CONSEQUENCE, "calls are refused (audit.failMode: closed) until it can be written again; lost events are recorded as a log.gap event then")
      : message;
  }

  private fail(err: Error, where = this.file): void {
    if (!this.reportedSinks.has(where)) {
      this.reportedSinks.add(where);
      // Say what happens to calls under the policy in force: failMode closed refuses them.
      const consequence = this.failMode() === "closed" ? "calls are refused (audit.failMode: closed) until it can be written again" : "calls go on, events are being lost";
      this.onError(`skillbox: cannot write the security log to ${where}: ${(err as NodeJS.ErrnoException).code ?? err.message}; ${consequence}`);
    }
  }

  /**
   * Writes one event. Never throws. The line's own keys (seq, prev, time, level, event) are the
   * log's: a field of that name is dropped, so each key appears once and its value is the host's.
   * Anything a skill supplies travels nested (skill.log puts the skill's fields under `fields`).
   */
  event(name: string, fields: Record<string, unknown>, level: string = "info"): void {
    try {
      const body: Record<string, unknown> = { event: name };
      for (const k of Object.keys(fields)) if (!RESERVED_KEYS.has(k)) body[k] = fields[k];
      this.logger[level === "warn" || level === "error" ? level : "info"](body);
    } catch (err) {
      this.failedEarly++;
      this.fail(err as Error);
    }
  }

  /** Resolves once every event written so far is in the file (or has failed). */
  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  /** For short-lived commands: writes the file sink's queue now. */
  flushSyncForCli(): void {
    for (const s of this.sinks) if (s instanceof ChainSink) s.flushSync();
  }

  /** Flushes and closes every sink. */
  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}
