import pg from "pg";
import { LeaseKeeper } from "./leases.js";
import { approvalInputText, approvalParams, capRetryAfter, newApprovalId, rowToApproval, rowToToken, rowToVersion, tokenParams, type ApprovalRow, type TokenRow, type VersionRow } from "./rows.js";
import {
  APPROVAL_RETENTION_MS,
  ONE_TOKEN,
  retryAfter,
  type ApiToken,
  type Approval,
  type ApprovalCheck,
  type ApprovalRequest,
  type BucketSpec,
  type LeaseResult,
  type PolicyVersion,
  type RateDecision,
  type StateStore,
  type StoreOptions,
} from "./store.js";

/** Each entry takes the schema from version i to i + 1; never edit one, append. */
const MIGRATIONS = [
  `CREATE TABLE skillbox_buckets (key text PRIMARY KEY, tokens double precision NOT NULL, at bigint NOT NULL, ok boolean NOT NULL, span_ms double precision NOT NULL);
   CREATE TABLE skillbox_leases (id text PRIMARY KEY, caller text NOT NULL, expires_at bigint NOT NULL);
   CREATE INDEX skillbox_leases_caller ON skillbox_leases (caller);
   CREATE TABLE skillbox_approvals (id text PRIMARY KEY, skill text NOT NULL, caller text NOT NULL, rule text NOT NULL, input_digest text NOT NULL,
     mode text NOT NULL, expires_in_ms bigint NOT NULL, status text NOT NULL, created_at bigint NOT NULL, expires_at bigint NOT NULL,
     decided_at bigint, decided_by text, reason text, used_at bigint, input text, seq bigserial NOT NULL);
   CREATE INDEX skillbox_approvals_request ON skillbox_approvals (skill, caller, input_digest, rule);
   CREATE UNIQUE INDEX skillbox_approvals_one_pending ON skillbox_approvals (skill, caller, input_digest, rule) WHERE status = 'pending';
   CREATE INDEX skillbox_approvals_pending_caller ON skillbox_approvals (caller, expires_at) WHERE status = 'pending';
   CREATE INDEX skillbox_approvals_pending_skill ON skillbox_approvals (skill, expires_at) WHERE status = 'pending';
   CREATE INDEX skillbox_approvals_live_expiry ON skillbox_approvals (expires_at) WHERE status IN ('pending', 'approved', 'denied');
   CREATE INDEX skillbox_approvals_seq ON skillbox_approvals (seq);
   CREATE TABLE skillbox_tokens (id text PRIMARY KEY, caller text NOT NULL, trust text NOT NULL, role text NOT NULL, secret_hash text NOT NULL,
     secret_enc text, created_at bigint NOT NULL, expires_at bigint, revoked_at bigint);
   CREATE TABLE skillbox_auth_failures (address text PRIMARY KEY, count integer NOT NULL, since bigint NOT NULL);
   CREATE TABLE skillbox_nonces (nonce text PRIMARY KEY, expires_at bigint NOT NULL);
   CREATE INDEX skillbox_nonces_expiry ON skillbox_nonces (expires_at);
   CREATE TABLE skillbox_policy_versions (hash text PRIMARY KEY, version text NOT NULL, label text, document text NOT NULL,
     loaded_at bigint NOT NULL, loaded_by text NOT NULL, source text NOT NULL);`,
  // Taking a lease in one round trip: the function holds a per-caller lock, and each statement in
  // it sees what committed before the lock was granted.
  `CREATE FUNCTION skillbox_take_lease(p_caller text, p_limit integer, p_id text, p_ttl_ms bigint) RETURNS integer
   LANGUAGE plpgsql VOLATILE AS $$
   DECLARE
     n integer;
     now_ms bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
   BEGIN
     PERFORM pg_advisory_xact_lock(hashtext('skillbox-lease:' || p_caller));
     DELETE FROM skillbox_leases WHERE caller = p_caller AND expires_at <= now_ms;
     SELECT count(*) INTO n FROM skillbox_leases WHERE caller = p_caller;
     IF n < p_limit THEN
       INSERT INTO skillbox_leases (id, caller, expires_at) VALUES (p_id, p_caller, now_ms + p_ttl_ms);
     END IF;
     RETURN n;
   END $$;`,
];

/** Advisory lock keys: any constants, the same for every skillbox using the database. */
const MIGRATE_LOCK = 0x5b1bb1;
const APPROVAL_LOCK = 0x5b1bb2;
/** The database server's clock in ms: leases are compared on one clock whichever machine holds them. */
const DB_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const PRUNE_EVERY = 2000;

/** The URL with its password masked, for messages. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://…";
  }
}

/**
 * The PostgreSQL store: any number of hosts on any number of machines share one set of buckets,
 * leases, approvals, tokens and policy versions. The schema is created and migrated on first use
 * (versioned, under an advisory lock). Each operation is one statement or one transaction.
 */
export class PgStateStore implements StateStore {
  readonly kind = "postgres" as const;
  readonly location: string;
  private readonly pool: pg.Pool;
  /**
   * Buckets and leases go through connections that do not wait for the WAL flush at commit: losing
   * the last moments of them in a database crash only refills a bucket or drops a lease early,
   * which is the durability the embedded store (WAL, synchronous=NORMAL) gives too. Approvals,
   * tokens, nonces and policy versions stay fully durable.
   */
  private readonly fast: pg.Pool;
  private readonly keeper: LeaseKeeper;
  private ready: Promise<void> | undefined;
  private ops = 0;
  private closed = false;

  constructor(url: string, options: StoreOptions & { onError?: (err: Error) => void } = {}) {
    this.location = maskUrl(url);
    const onError = options.onError ?? (() => undefined);
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000, allowExitOnIdle: true });
    this.pool.on("error", onError);
    this.fast = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000, allowExitOnIdle: true, options: "-c synchronous_commit=off" });
    this.fast.on("error", onError);
    this.keeper = new LeaseKeeper(
      options,
      async (ids, _expiresAt) => {
        if (this.closed) return;
        await this.fast.query(`UPDATE skillbox_leases SET expires_at = ${DB_NOW} + $2 WHERE id = ANY($1)`, [ids, this.keeper.ttlMs]);
      },
      onError,
    );
  }

  /** Creates or migrates the schema once per handle; concurrent first uses wait on one lock. */
  open(): Promise<void> {
    this.ready ??= this.withClient(async (c) => {
      await c.query("BEGIN");
      await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK]);
      await c.query("CREATE TABLE IF NOT EXISTS skillbox_meta (key text PRIMARY KEY, value text NOT NULL)");
      const r = await c.query<{ value: string }>("SELECT value FROM skillbox_meta WHERE key = 'schema_version'");
      const version = r.rows[0] ? Number(r.rows[0].value) : 0;
      if (version > MIGRATIONS.length) throw new Error(`the state schema in ${this.location} is version ${version}, newer than this skillbox understands (${MIGRATIONS.length}); upgrade skillbox`);
      for (let v = version; v < MIGRATIONS.length; v++) await c.query(MIGRATIONS[v]!);
      await c.query("INSERT INTO skillbox_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(MIGRATIONS.length)]);
      await c.query("COMMIT");
    }, true).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>, skipOpen = false, pool = this.pool): Promise<T> {
    if (!skipOpen) await this.open();
    const c = await pool.connect();
    try {
      return await fn(c);
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>, pool = this.pool): Promise<T> {
    return this.withClient(
      async (c) => {
        await c.query("BEGIN");
        const out = await fn(c);
        await c.query("COMMIT");
        return out;
      },
      false,
      pool,
    );
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[], pool = this.pool): Promise<R[]> {
    await this.open();
    return (await pool.query<R>(sql, params)).rows;
  }

  private tick(now: number): void {
    if (++this.ops % PRUNE_EVERY === 0) void this.prune(now).catch(() => undefined);
  }

  async takeToken(b: BucketSpec, now: number): Promise<RateDecision> {
    this.tick(now);
    const [row] = await this.query<{ tokens: number; ok: boolean }>(
      `INSERT INTO skillbox_buckets AS b (key, tokens, at, ok, span_ms) VALUES ($1, $2::float8 - 1, $3, true, $6)
       ON CONFLICT (key) DO UPDATE SET
         ok = (least($2::float8, b.tokens + greatest(0, $3 - b.at) * $4::float8) >= $5::float8),
         tokens = least($2::float8, b.tokens + greatest(0, $3 - b.at) * $4::float8) - (CASE WHEN least($2::float8, b.tokens + greatest(0, $3 - b.at) * $4::float8) >= $5::float8 THEN 1 ELSE 0 END),
         at = greatest(b.at, $3),
         span_ms = $6
       RETURNING tokens, ok`,
      [b.key, b.capacity, Math.round(now), b.perMs, ONE_TOKEN, b.capacity / b.perMs],
      this.fast,
    );
    return row!.ok ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: retryAfter(row!.tokens, b) };
  }

  async acquireLease(caller: string, limit: number): Promise<LeaseResult> {
    const id = this.keeper.newId();
    // One lock per caller inside the function: two hosts never both see a free slot.
    const [row] = await this.query<{ n: number }>("SELECT skillbox_take_lease($1, $2, $3, $4) AS n", [caller, limit, id, this.keeper.ttlMs], this.fast);
    const running = Number(row!.n);
    if (running >= limit) return { ok: false, running };
    this.keeper.hold(id);
    let released = false;
    return {
      ok: true,
      release: async () => {
        if (released) return;
        released = true;
        this.keeper.drop(id);
        if (!this.closed) await this.fast.query("DELETE FROM skillbox_leases WHERE id = $1", [id]);
      },
    };
  }

  private async expireApprovals(c: pg.PoolClient | pg.Pool, now: number): Promise<void> {
    await c.query("UPDATE skillbox_approvals SET status = 'expired' WHERE status IN ('pending', 'approved', 'denied') AND expires_at <= $1", [now]);
  }

  async checkApproval(req: ApprovalRequest, now: number): Promise<ApprovalCheck> {
    this.tick(now);
    return this.tx(async (c): Promise<ApprovalCheck> => {
      await this.expireApprovals(c, now);
      const find = async () =>
        (
          await c.query<ApprovalRow>(
            "SELECT * FROM skillbox_approvals WHERE skill = $1 AND caller = $2 AND input_digest = $3 AND rule = $4 AND status IN ('approved', 'denied', 'pending') ORDER BY seq",
            [req.skill, req.caller, req.inputDigest, req.rule],
          )
        ).rows;
      // A single-use approval is used by one call only: the UPDATE decides who, and a loser looks again.
      for (let round = 0; round < 3; round++) {
        const rows = await find();
        const approved = rows.find((r) => r.status === "approved");
        if (approved) {
          if (approved.mode !== "single-use") return { kind: "run", approval: rowToApproval(approved) };
          const used = await c.query<ApprovalRow>("UPDATE skillbox_approvals SET status = 'used', used_at = $2 WHERE id = $1 AND status = 'approved' RETURNING *", [approved.id, now]);
          if (used.rows[0]) return { kind: "run", approval: rowToApproval(used.rows[0]) };
          continue;
        }
        const denied = rows.find((r) => r.status === "denied");
        if (denied) return { kind: "denied", approval: rowToApproval(denied) };
        const pending = rows.find((r) => r.status === "pending");
        if (pending) return { kind: "pending", approval: rowToApproval(pending), created: false };
        break;
      }
      // Creating is rare: one lock makes the caps exact across hosts.
      await c.query("SELECT pg_advisory_xact_lock($1)", [APPROVAL_LOCK]);
      for (const [per, max] of [
        ["caller", req.maxPendingPerCaller],
        ["skill", req.maxPendingPerSkill],
      ] as const) {
        const r = await c.query<{ n: string; oldest: string | null }>(
          `SELECT count(*) AS n, min(expires_at) AS oldest FROM (SELECT expires_at FROM skillbox_approvals WHERE ${per} = $1 AND status = 'pending' LIMIT $2) p`,
          [per === "caller" ? req.caller : req.skill, max],
        );
        const n = Number(r.rows[0]!.n);
        if (n >= max) return { kind: "full", per, pending: n, max, retryAfterMs: capRetryAfter(r.rows[0]!.oldest === null ? undefined : Number(r.rows[0]!.oldest), now) };
      }
      const ins = await c.query<ApprovalRow>(
        `INSERT INTO skillbox_approvals (id, skill, caller, rule, input_digest, mode, expires_in_ms, status, created_at, expires_at, input)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10)
         ON CONFLICT (skill, caller, input_digest, rule) WHERE status = 'pending' DO NOTHING RETURNING *`,
        [newApprovalId(), req.skill, req.caller, req.rule, req.inputDigest, req.mode, req.expiresInMs, now, now + req.expiresInMs, approvalInputText(req.input)],
      );
      if (ins.rows[0]) return { kind: "pending", approval: rowToApproval(ins.rows[0]), created: true };
      const other = (await find()).find((r) => r.status === "pending");
      if (!other) throw new Error("approval request vanished while it was being created");
      return { kind: "pending", approval: rowToApproval(other), created: false };
    });
  }

  async decideApproval(id: string, decision: "approved" | "denied", by: string, reason: string | undefined, now: number): Promise<Approval> {
    return this.tx(async (c) => {
      await this.expireApprovals(c, now);
      const r = await c.query<ApprovalRow>(
        "UPDATE skillbox_approvals SET status = $1, decided_at = $2, decided_by = $3, reason = $4, expires_at = $2 + expires_in_ms WHERE id = $5 AND status = 'pending' RETURNING *",
        [decision, now, by, reason ?? null, id],
      );
      if (r.rows[0]) return rowToApproval(r.rows[0]);
      const existing = await c.query<{ status: string }>("SELECT status FROM skillbox_approvals WHERE id = $1", [id]);
      throw new Error(existing.rows[0] ? `approval ${id} is ${existing.rows[0].status}, not pending` : `no approval with id ${id}`);
    });
  }

  async listApprovals(now: number, limit = 1000): Promise<Approval[]> {
    await this.open();
    await this.expireApprovals(this.pool, now);
    return (await this.query<ApprovalRow>("SELECT * FROM skillbox_approvals ORDER BY seq DESC LIMIT $1", [limit])).map(rowToApproval);
  }

  async importApprovals(list: Approval[]): Promise<number> {
    return this.tx(async (c) => {
      let n = 0;
      for (const a of list) {
        const r = await c.query(
          `INSERT INTO skillbox_approvals (id, skill, caller, rule, input_digest, mode, expires_in_ms, status, created_at, expires_at, decided_at, decided_by, reason, used_at, input)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING`,
          approvalParams(a),
        );
        n += r.rowCount ?? 0;
      }
      return n;
    });
  }

  async putToken(t: ApiToken): Promise<void> {
    await this.query(
      `INSERT INTO skillbox_tokens (id, caller, trust, role, secret_hash, secret_enc, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET caller = excluded.caller, trust = excluded.trust, role = excluded.role, secret_hash = excluded.secret_hash,
         secret_enc = excluded.secret_enc, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
      tokenParams(t),
    );
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const [r] = await this.query<TokenRow>("SELECT * FROM skillbox_tokens WHERE id = $1", [id]);
    return r && rowToToken(r);
  }

  async revokeToken(id: string, now: number): Promise<boolean> {
    await this.open();
    const r = await this.pool.query("UPDATE skillbox_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", [id, now]);
    return (r.rowCount ?? 0) > 0;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.query<TokenRow>("SELECT * FROM skillbox_tokens ORDER BY created_at", [])).map(rowToToken);
  }

  async addAuthFailure(address: string, windowMs: number, now: number): Promise<number> {
    const [r] = await this.query<{ count: number }>(
      `INSERT INTO skillbox_auth_failures AS f (address, count, since) VALUES ($1, 1, $2)
       ON CONFLICT (address) DO UPDATE SET
         count = CASE WHEN f.since + $3 > $2 THEN f.count + 1 ELSE 1 END,
         since = CASE WHEN f.since + $3 > $2 THEN f.since ELSE $2 END
       RETURNING count`,
      [address, now, windowMs],
    );
    return Number(r!.count);
  }

  async clearAuthFailures(address: string): Promise<void> {
    await this.query("DELETE FROM skillbox_auth_failures WHERE address = $1", [address]);
  }

  async useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean> {
    this.tick(now);
    const rows = await this.query("INSERT INTO skillbox_nonces AS n (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO UPDATE SET expires_at = $2 WHERE n.expires_at <= $3 RETURNING nonce", [
      nonce,
      expiresAt,
      now,
    ]);
    return rows.length > 0;
  }

  async recordPolicyVersion(v: PolicyVersion): Promise<void> {
    await this.query("INSERT INTO skillbox_policy_versions (hash, version, label, document, loaded_at, loaded_by, source) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING", [
      v.hash,
      v.version,
      v.label,
      v.document,
      Date.parse(v.loadedAt),
      v.loadedBy,
      v.source,
    ]);
  }

  async listPolicyVersions(): Promise<PolicyVersion[]> {
    return (await this.query<VersionRow>("SELECT * FROM skillbox_policy_versions ORDER BY loaded_at DESC", [])).map(rowToVersion);
  }

  async prune(now: number): Promise<void> {
    await this.tx(async (c) => {
      await c.query(`DELETE FROM skillbox_leases WHERE expires_at <= ${DB_NOW}`);
      await c.query("DELETE FROM skillbox_nonces WHERE expires_at <= $1", [now]);
      await c.query("DELETE FROM skillbox_buckets WHERE at + span_ms <= $1", [now]);
      await this.expireApprovals(c, now);
      await c.query("DELETE FROM skillbox_approvals WHERE status IN ('expired', 'used') AND expires_at <= $1", [now - APPROVAL_RETENTION_MS]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.keeper.close();
    this.closed = true;
    await Promise.all([this.pool.end().catch(() => undefined), this.fast.end().catch(() => undefined)]);
  }
}
