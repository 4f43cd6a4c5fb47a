import { createRequire } from "node:module";
import type pgTypes from "pg";

// pg is loaded on first use: most hosts and CLI commands never talk to PostgreSQL, and loading it
// costs every process start (pg is CommonJS, so a synchronous require keeps the constructor sync).
let loaded: typeof pgTypes | undefined;
function pgModule(): typeof pgTypes {
  loaded ??= createRequire(import.meta.url)("pg") as typeof pgTypes;
  return loaded;
}
import { GENESIS, lineHash } from "./chain.js";

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

/**
 * PostgreSQL sink for teams running many hosts: the same lines with the same hash chain, in one
 * table. Each batch is stamped inside a transaction holding an advisory lock, from the table's
 * last row, so concurrent hosts keep one chain. Writes are queued and never block a call;
 * failures are counted and the batch is dropped (the file sink still has it).
 */
export class PgSink implements LineSink {
  private readonly pool: pgTypes.Pool;
  private queue: string[] = [];
  private writing = false;
  private waiters: (() => void)[] = [];
  private tableReady = false;
  failed = 0;
  healthy = true;

  constructor(
    url: string,
    private readonly table: string,
    private readonly key: string | undefined,
    private readonly onError: (err: Error) => void,
  ) {
    if (!IDENT.test(table)) throw new Error(`audit.table must be a plain SQL identifier, got "${table}"`);
    this.pool = new (pgModule().Pool)({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
    this.pool.on("error", (err) => this.onError(err));
  }

  /** Creates the table once, under the writers' lock (concurrent CREATE TABLE IF NOT EXISTS can fail). */
  private async ensureTable(): Promise<void> {
    if (this.tableReady) return;
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (
           seq bigint PRIMARY KEY, prev text NOT NULL, line text NOT NULL,
           time timestamptz, event text, call_id text, skill text, caller text, session text)`,
      );
      await client.query("COMMIT");
      this.tableReady = true;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  write(json: string): void {
    this.queue.push(json);
    if (!this.writing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.ensureTable();
        await this.insert(batch);
        this.healthy = true;
      } catch (err) {
        this.failed += batch.length;
        this.healthy = false;
        this.onError(err as Error);
      }
    }
    this.writing = false;
    for (const w of this.waiters.splice(0)) w();
  }

  private async insert(batch: string[]): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
      const last = await client.query<{ seq: string; line: string }>(`SELECT seq, line FROM ${this.table} ORDER BY seq DESC LIMIT 1`);
      let seq = Number(last.rows[0]?.seq ?? 0);
      let prev = last.rows[0] ? lineHash(last.rows[0].line, this.key) : GENESIS;
      const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
      for (const json of batch) {
        const line = `{"seq":${++seq},"prev":"${prev}",${json.slice(1)}`;
        const e = JSON.parse(line) as Record<string, unknown>;
        [seq, prev, line, e["time"] ?? null, e["event"] ?? null, e["callId"] ?? null, e["skill"] ?? null, e["caller"] ?? null, e["session"] ?? null].forEach((v, i) => cols[i]!.push(v));
        prev = lineHash(line, this.key);
      }
      await client.query(
        `INSERT INTO ${this.table} (seq, prev, line, time, event, call_id, skill, caller, session)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])`,
        cols,
      );
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.flush();
    await this.pool.end().catch(() => undefined);
  }
}

/** The lines of a PostgreSQL audit table in chain order, for verify, review and stats. */
export async function readPgLines(url: string, table = "skillbox_audit"): Promise<string[]> {
  if (!IDENT.test(table)) throw new Error(`table must be a plain SQL identifier, got "${table}"`);
  const client = new (pgModule().Client)({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const r = await client.query<{ line: string }>(`SELECT line FROM ${table} ORDER BY seq`);
    return r.rows.map((row) => row.line);
  } finally {
    await client.end();
  }
}
