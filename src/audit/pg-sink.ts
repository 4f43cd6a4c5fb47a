import { appendFileSync, closeSync, openSync, readSync, statSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import type pgTypes from "pg";
import { GENESIS, lineHash, stampLine } from "./chain.js";

// pg is loaded on first use: most hosts and CLI commands never talk to PostgreSQL, and loading it
// costs every process start (pg is CommonJS, so a synchronous require keeps the constructor sync).
let loaded: typeof pgTypes | undefined;
function pgModule(): typeof pgTypes {
  loaded ??= createRequire(import.meta.url)("pg") as typeof pgTypes;
  return loaded;
}

/** What the security log writes to: the file sink and, optionally, PostgreSQL. */
export interface LineSink {
  write(json: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly failed: number;
  readonly healthy: boolean;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
/** Any constant works; it only has to be the same for every skillbox writer of the table. */
const LOCK_KEY = 0x5b1bb0;
/** Lines per INSERT: a batch is also the unit re-sent after a failure. */
const BATCH_LINES = 500;
/** Lines held in memory while the server is away; beyond this they are spilled to a file. */
const MAX_QUEUED_LINES = 50_000;
/** Retry delays after a failed batch: 0.5 s doubling to 10 s. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export interface PgSinkOptions {
  url: string;
  table: string;
  key: string | undefined;
  /** the log file, which has every event: named in warnings, and the spill file goes beside it */
  file: string;
  /** how long close() waits for queued events to reach the server; @default 5000 */
  closeTimeoutMs?: number | undefined;
  /** a query (or connecting) that takes longer fails and is retried; @default 10000 */
  queryTimeoutMs?: number | undefined;
  onStatus: (message: string) => void;
}

interface Batch {
  /** written with the rows: a batch whose COMMIT was sent but not confirmed is not stored twice */
  id: string;
  lines: string[];
}

/** Lines in a file, read in bounded chunks; 0 when there is no such file. */
function countLines(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return 0;
  }
  try {
    const buf = Buffer.alloc(1024 * 1024);
    let n = 0;
    for (let pos = 0, got = 0; (got = readSync(fd, buf, 0, buf.length, pos)) > 0; pos += got) {
      for (let i = 0; i < got; i++) if (buf[i] === 10) n++;
    }
    return n;
  } finally {
    closeSync(fd);
  }
}

let batchCounter = 0;
const batchId = () => `${process.pid}-${Date.now().toString(36)}-${(++batchCounter).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * PostgreSQL sink for teams running many hosts: the same lines with the same hash chain, in one
 * table. Each batch is stamped inside a transaction holding an advisory lock, from the table's
 * last row, so concurrent hosts keep one chain. Writes are queued and never block a call.
 *
 * A server that goes away never takes the host with it: every pool and client error has a
 * listener, queries and connects time out, TCP keepalive finds dead peers. Failed batches stay
 * queued (in memory up to a bound, then in a spill file beside the log) and are re-sent in order,
 * each at most once (its batch id is stored with its rows), when the server is back: the table
 * ends up with every event the file has. close() waits a bounded time and says what it could not send.
 */
export class PgSink implements LineSink {
  private readonly pool: pgTypes.Pool;
  private readonly table: string;
  /** batches not yet stored, oldest first */
  private queue: Batch[] = [];
  private queuedLines = 0;
  /** lines accepted since the last batch was cut */
  private open: string[] = [];
  private readonly spillFile: string;
  private spillOffset = 0;
  private spilling = false;
  private spilledLines = 0;
  private writing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private waiters: (() => void)[] = [];
  private tableReady = false;
  private down: { since: string; reason: string } | undefined;
  private closing = false;
  private stopped = false;
  failed = 0;
  healthy = true;

  constructor(private readonly o: PgSinkOptions) {
    if (!IDENT.test(o.table)) throw new Error(`audit.table must be a plain SQL identifier, got "${o.table}"`);
    this.table = o.table;
    this.spillFile = `${o.file}.pg-queue.jsonl`;
    const timeout = o.queryTimeoutMs ?? 10_000;
    this.pool = new (pgModule().Pool)({
      connectionString: o.url,
      max: 2,
      connectionTimeoutMillis: Math.min(timeout, 5000),
      query_timeout: timeout,
      statement_timeout: timeout,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
    });
    // An idle client's error reaches the pool; a checked-out client's reaches the client itself.
    // Without these listeners a restarted server crashes the host process.
    this.pool.on("error", (err) => this.fault(err));
    this.pool.on("connect", (client) => client.on("error", (err) => this.fault(err)));
    // Lines a previous process spilled and never sent are sent first.
    const kept = countLines(this.spillFile);
    if (kept > 0) {
      this.spilling = true;
      this.spilledLines = kept;
      queueMicrotask(() => void this.drain());
    }
  }

  private fault(err: Error): void {
    this.markDown(err);
  }

  private markDown(err: Error): void {
    this.healthy = false;
    if (this.down) return;
    this.down = { since: new Date().toISOString(), reason: (err as NodeJS.ErrnoException).code ?? err.message };
    this.o.onStatus(
      `skillbox: cannot write the security log to PostgreSQL (${this.down.reason}); events stay queued and are re-sent in order when it is back; the log file ${this.o.file} has every event`,
    );
  }

  private markUp(): void {
    this.healthy = true;
    this.retryMs = RETRY_MIN_MS;
    if (!this.down) return;
    this.o.onStatus(`skillbox: PostgreSQL is writable again (it was not since ${this.down.since}); the queued events are being sent`);
    this.down = undefined;
  }

  write(json: string): void {
    if (this.stopped) {
      this.failed++;
      return;
    }
    this.open.push(json);
    if (!this.writing && this.retryTimer === undefined) queueMicrotask(() => void this.drain());
  }

  /** Cuts accepted lines into batches: in memory while under the bound, else appended to the spill file. */
  private cut(): void {
    while (this.open.length > 0) {
      const lines = this.open.splice(0, BATCH_LINES);
      if (this.spilling || this.queuedLines + lines.length > MAX_QUEUED_LINES) {
        try {
          appendFileSync(this.spillFile, lines.map((l) => l + "\n").join(""), { mode: 0o600 });
          this.spilling = true;
          this.spilledLines += lines.length;
        } catch {
          this.failed += lines.length; // no room in memory or on disk: counted (the log file has them)
        }
        continue;
      }
      this.queue.push({ id: batchId(), lines });
      this.queuedLines += lines.length;
    }
  }

  /** Refills the memory queue from the spill file, in order, once it has room. */
  private unspill(): void {
    if (!this.spilling || this.queuedLines > 0) return;
    let fd: number;
    try {
      fd = openSync(this.spillFile, "r");
    } catch {
      this.spilling = false;
      return;
    }
    try {
      const size = statSync(this.spillFile).size;
      const chunk = Buffer.alloc(Math.min(size - this.spillOffset, 8 * 1024 * 1024));
      const n = readSync(fd, chunk, 0, chunk.length, this.spillOffset);
      const text = chunk.subarray(0, n).toString("utf8");
      const end = text.lastIndexOf("\n") + 1;
      const lines = text
        .slice(0, end)
        .split("\n")
        .filter((l) => l !== "");
      this.spillOffset += Buffer.byteLength(text.slice(0, end));
      this.spilledLines = Math.max(0, this.spilledLines - lines.length);
      for (let i = 0; i < lines.length; i += BATCH_LINES) {
        const part = lines.slice(i, i + BATCH_LINES);
        this.queue.push({ id: batchId(), lines: part });
        this.queuedLines += part.length;
      }
      if (this.spillOffset >= size) {
        closeSync(fd);
        fd = -1;
        unlinkSync(this.spillFile);
        this.spilling = false;
        this.spillOffset = 0;
        this.spilledLines = 0;
      }
    } catch {
      /* read again on the next round */
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /** lines not yet stored: in memory and spilled */
  get backlog(): number {
    return this.queuedLines + this.open.length + this.spilledLines;
  }

  private async drain(): Promise<void> {
    if (this.writing || this.stopped) return;
    this.writing = true;
    try {
      for (;;) {
        this.cut();
        this.unspill();
        const batch = this.queue[0];
        if (!batch) break;
        try {
          await this.ensureTable();
          await this.insert(batch);
        } catch (err) {
          this.markDown(err as Error);
          if (!this.closing) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = undefined;
              void this.drain();
            }, this.retryMs);
            this.retryTimer.unref();
            this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
          }
          return;
        }
        this.queue.shift();
        this.queuedLines -= batch.lines.length;
        this.markUp();
      }
    } finally {
      this.writing = false;
      if (this.backlog === 0 || this.closing) for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Creates the table and its indexes once, under the writers' lock (concurrent CREATE ... IF NOT EXISTS can fail). */
  private async ensureTable(): Promise<void> {
    if (this.tableReady) return;
    const t = this.table;
    await this.transaction(async (client) => {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${t} (
           seq bigint PRIMARY KEY, prev text NOT NULL, line text NOT NULL,
           time timestamptz, event text, call_id text, skill text, caller text, session text, batch_id text)`,
      );
      await client.query(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS batch_id text`);
      for (const [name, cols] of [
        ["session", "session, time"],
        ["skill", "skill, time"],
        ["time", "time"],
        ["call", "call_id"],
        ["batch", "batch_id"],
      ] as const) {
        await client.query(`CREATE INDEX IF NOT EXISTS ${t}_${name}_idx ON ${t} (${cols})`);
      }
    });
    this.tableReady = true;
  }

  private async transaction(fn: (client: pgTypes.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
      await fn(client);
      await client.query("COMMIT");
    } catch (err) {
      broken = err as Error;
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      // A client whose query failed may be half-dead: drop it rather than reuse it.
      client.release(broken);
    }
  }

  private async insert(batch: Batch): Promise<void> {
    const t = this.table;
    await this.transaction(async (client) => {
      // Sent before, its COMMIT lost with the connection: it is stored already.
      const seen = await client.query(`SELECT 1 FROM ${t} WHERE batch_id = $1 LIMIT 1`, [batch.id]);
      if (seen.rowCount) return;
      const last = await client.query<{ seq: string; line: string }>(`SELECT seq, line FROM ${t} ORDER BY seq DESC LIMIT 1`);
      let seq = Number(last.rows[0]?.seq ?? 0);
      let prev = last.rows[0] ? lineHash(last.rows[0].line, this.o.key) : GENESIS;
      const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
      for (const json of batch.lines) {
        const line = stampLine(json, ++seq, prev);
        let e: Record<string, unknown> = {};
        try {
          e = JSON.parse(line) as Record<string, unknown>;
        } catch {
          /* stored as it is; the columns stay empty */
        }
        [seq, prev, line, e["time"] ?? null, e["event"] ?? null, e["callId"] ?? null, e["skill"] ?? null, e["caller"] ?? null, e["session"] ?? null, batch.id].forEach((v, i) => cols[i]!.push(v));
        prev = lineHash(line, this.o.key);
      }
      await client.query(
        `INSERT INTO ${t} (seq, prev, line, time, event, call_id, skill, caller, session, batch_id)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
        cols,
      );
    });
  }

  flush(): Promise<void> {
    if (this.backlog === 0 && !this.writing) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.retryTimer === undefined) void this.drain();
    return p;
  }

  /** Sends what is queued, waiting at most closeTimeoutMs; reports what it could not send. */
  async close(): Promise<void> {
    const bound = this.o.closeTimeoutMs ?? 5000;
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, bound)));
    await Promise.race([this.flushUntilDone(bound), deadline]);
    this.closing = true;
    this.stopped = true;
    const unsent = this.backlog;
    if (unsent > 0) {
      // Kept for the next process to send (the spill file), or at least said.
      try {
        this.cut();
        const lines = this.queue.flatMap((b) => b.lines);
        if (lines.length) appendFileSync(this.spillFile, lines.map((l) => l + "\n").join(""), { mode: 0o600 });
        this.o.onStatus(
          `skillbox: ${unsent} security log event(s) could not be sent to PostgreSQL within ${bound} ms; they are in ${this.o.file}, and kept in ${this.spillFile} to be sent by the next host that opens this log`,
        );
      } catch {
        this.failed += unsent;
        this.o.onStatus(`skillbox: ${unsent} security log event(s) could not be sent to PostgreSQL within ${bound} ms; they are in ${this.o.file} only`);
      }
    }
    // A frozen server never answers the goodbye: end the pool within what is left, then cut the sockets.
    await Promise.race([this.pool.end().catch(() => undefined), deadline]);
    clearTimeout(timer);
    for (const c of (this.pool as unknown as { _clients?: { connection?: { stream?: { destroy(): void } } }[] })._clients ?? []) c.connection?.stream?.destroy();
  }

  /** Retries (without waiting for the back-off) until everything is stored or the bound passes. */
  private async flushUntilDone(boundMs: number): Promise<void> {
    const until = Date.now() + boundMs;
    while (this.backlog > 0 && Date.now() < until) {
      await this.drain();
      if (this.backlog > 0) await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, until - Date.now()))));
    }
  }
}

/** The lines of a PostgreSQL audit table in chain order, for verify, review and stats. */
export async function readPgLines(url: string, table = "skillbox_audit"): Promise<string[]> {
  if (!IDENT.test(table)) throw new Error(`table must be a plain SQL identifier, got "${table}"`);
  const client = new (pgModule().Client)({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: 60_000 });
  client.on("error", () => undefined); // reported through the failing query instead
  await client.connect();
  try {
    const r = await client.query<{ line: string }>(`SELECT line FROM ${table} ORDER BY seq`);
    return r.rows.map((row) => row.line);
  } finally {
    await client.end().catch(() => undefined);
  }
}
