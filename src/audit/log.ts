import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import pino, { type Logger } from "pino";
import { GENESIS, lineHash } from "./chain.js";
import { AppendSink } from "./sink.js";

export interface AuditOptions {
  /** JSON-lines file; @default ".skillbox/audit.jsonl" in the workspace */
  file: string;
  /** HMAC key for the chain; @default process.env.SKILLBOX_AUDIT_KEY */
  key?: string;
  /** where write failures are reported; @default process.stderr */
  onError?: (message: string) => void;
}

/** Paths pino removes before a line is written (and hashed). */
const REDACT = [
  "headers.authorization", "headers.Authorization", "headers.cookie", "headers.Cookie",
  "request.headers.authorization", "request.headers.cookie", "fields.password", "fields.token", "fields.secret", "fields.apiKey",
];

/** The last line of a file, read from its end (so a restart continues the chain), and whether it ends in a newline. */
function lastLine(file: string): { line: string; complete: boolean } | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const chunk = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(chunk);
    readSync(fd, buf, 0, chunk, size - chunk);
    const text = buf.toString("utf8");
    const line = text.split("\n").filter((l) => l.trim() !== "").at(-1);
    return line === undefined ? undefined : { line, complete: text.endsWith("\n") };
  } finally {
    closeSync(fd);
  }
}

/**
 * The security log: one JSON line per event, through pino, each carrying `seq` and `prev`
 * (hash of the previous line). Writes never throw into a call: a failing sink is counted and
 * reported on stderr once.
 */
export class AuditLog {
  readonly file: string;
  private readonly logger: Logger;
  private readonly sink: AppendSink;
  private seq = 0;
  private prev = GENESIS;
  private readonly key: string | undefined;
  private readonly onError: (message: string) => void;
  private failedEarly = 0;
  private reported = false;

  constructor(options: AuditOptions) {
    this.file = options.file;
    this.key = options.key ?? process.env["SKILLBOX_AUDIT_KEY"] ?? undefined;
    this.onError = options.onError ?? ((m) => process.stderr.write(m + "\n"));
    const last = lastLine(this.file);
    if (last !== undefined) {
      // Restart: continue the chain from the last line. A torn last line (a crash mid-write)
      // is chained from as it is; `audit verify` reports it as truncated, not as tampering.
      this.prev = lineHash(last.line, this.key);
      try {
        const parsed = JSON.parse(last.line) as { seq?: unknown };
        if (typeof parsed.seq === "number") this.seq = parsed.seq;
      } catch {
        this.seq = Number(/"seq":(\d+)/.exec(last.line)?.[1] ?? this.seq);
      }
    }
    this.sink = new AppendSink(this.file, (err) => this.fail(err));
    if (last !== undefined && !last.complete) this.sink.write("\n");
    const sink = {
      write: (line: string) => {
        this.prev = lineHash(line.endsWith("\n") ? line.slice(0, -1) : line, this.key);
        this.sink.write(line);
      },
    };
    this.logger = pino(
      {
        base: null,
        messageKey: "msg",
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        mixin: () => ({ seq: ++this.seq, prev: this.prev }),
        redact: { paths: REDACT, censor: "[redacted]" },
      },
      sink,
    );
  }

  /** log lines that could not be written */
  get failures(): number {
    return this.sink.failed + this.failedEarly;
  }

  private fail(err: Error): void {
    if (!this.reported) {
      this.reported = true;
      this.onError(`skillbox: cannot write the security log ${this.file}: ${(err as NodeJS.ErrnoException).code ?? err.message}; calls go on, events are being lost`);
    }
  }

  /** Writes one event. Never throws. */
  event(name: string, fields: Record<string, unknown>, level: "info" | "warn" | "error" = "info"): void {
    try {
      this.logger[level]({ event: name, ...fields });
    } catch (err) {
      this.failedEarly++;
      this.fail(err as Error);
    }
  }

  /** Resolves once every event written so far is in the file (or has failed). */
  flush(): Promise<void> {
    return this.sink.flush();
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return this.sink.close();
  }
}
