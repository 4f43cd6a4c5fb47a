import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { join } from "node:path";
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

export const STATE_DB_FILE = "state.db";

/** Each entry takes the schema from version i to i + 1; never edit one, append. */
const MIGRATIONS = [
  `CREATE TABLE buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL, span_ms REAL NOT NULL);
   CREATE TABLE leases (id TEXT PRIMARY KEY, caller TEXT NOT NULL, expires_at INTEGER NOT NULL);
   CREATE INDEX leases_caller ON leases (caller);
   CREATE TABLE approvals (id TEXT PRIMARY KEY, skill TEXT NOT NULL, caller TEXT NOT NULL, rule TEXT NOT NULL, input_digest TEXT NOT NULL,
     mode TEXT NOT NULL, expires_in_ms INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
     decided_at INTEGER, decided_by TEXT, reason TEXT, used_at INTEGER, input TEXT, seq INTEGER NOT NULL);
   CREATE INDEX approvals_request ON approvals (skill, caller, input_digest, rule);
   CREATE UNIQUE INDEX approvals_one_pending ON approvals (skill, caller, input_digest, rule) WHERE status = 'pending';
   CREATE INDEX approvals_pending_caller ON approvals (caller, expires_at) WHERE status = 'pending';
   CREATE INDEX approvals_pending_skill ON approvals (skill, expires_at) WHERE status = 'pending';
   CREATE INDEX approvals_live_expiry ON approvals (expires_at) WHERE status IN ('pending', 'approved', 'denied');
   CREATE INDEX approvals_seq ON approvals (seq);
   CREATE TABLE tokens (id TEXT PRIMARY KEY, caller TEXT NOT NULL, trust TEXT NOT NULL, role TEXT NOT NULL, secret_hash TEXT NOT NULL,
     secret_enc TEXT, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);
   CREATE TABLE auth_failures (address TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL);
   CREATE TABLE nonces (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
   CREATE INDEX nonces_expiry ON nonces (expires_at);
   CREATE TABLE policy_versions (hash TEXT PRIMARY KEY, version TEXT NOT NULL, label TEXT, document TEXT NOT NULL,
     loaded_at INTEGER NOT NULL, loaded_by TEXT NOT NULL, source TEXT NOT NULL);`,
];

/** How often (in store operations) expired rows are swept out, besides at open. */
const PRUNE_EVERY = 2000;

/**
 * The embedded store: one SQLite database file in the state folder (WAL, busy timeout), shared
 * safely by every process on this machine that opens it. Each operation is one statement or one
 * `BEGIN IMMEDIATE` transaction, so concurrent processes never interleave inside one.
 */
export class SqliteStateStore implements StateStore {
  readonly kind = "embedded" as const;
  readonly location: string;
  private readonly db: DatabaseSync;
  private readonly keeper: LeaseKeeper;
  private readonly stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  private ops = 0;
  private closed = false;

  constructor(dir: string, options: StoreOptions & { onError?: (err: Error) => void; busyTimeoutMs?: number } = {}) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.location = join(dir, STATE_DB_FILE);
    const fresh = !existsSync(this.location);
    this.db = new DatabaseSync(this.location, { timeout: options.busyTimeoutMs ?? 5000 });
    if (fresh) chmodSync(this.location, 0o600);
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    this.migrate();
    this.keeper = new LeaseKeeper(
      options,
      async (ids, expiresAt) => {
        if (this.closed) return;
        this.tx(() => {
          for (const id of ids) this.q("UPDATE leases SET expires_at = ? WHERE id = ?").run(expiresAt, id);
        });
      },
      options.onError ?? (() => undefined),
    );
  }

  private migrate(): void {
    this.tx(() => {
      this.db.exec("CREATE TABLE IF NOT EXISTS skillbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      const row = this.db.prepare("SELECT value FROM skillbox_meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
      const version = row ? Number(row.value) : 0;
      if (version > MIGRATIONS.length) throw new Error(`${this.location} has state schema version ${version}, newer than this skillbox understands (${MIGRATIONS.length}); upgrade skillbox`);
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
      this.db.prepare("INSERT INTO skillbox_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(MIGRATIONS.length));
    });
  }

  private q(sql: string) {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** One BEGIN IMMEDIATE transaction: the write lock is taken up front, so no two processes read-then-write. */
  private tx<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }

  private tick(now: number): void {
    if (++this.ops % PRUNE_EVERY === 0) this.pruneSync(now);
  }

  async takeToken(b: BucketSpec, now: number): Promise<RateDecision> {
    this.tick(now);
    // One statement: refill, take if a whole token is there, remember whether it was.
    const row = this.q(
      `INSERT INTO buckets (key, tokens, at, ok, span_ms) VALUES ($key, $cap - 1, $now, 1, $span)
       ON CONFLICT (key) DO UPDATE SET
         ok = (min($cap, tokens + max(0, $now - at) * $perMs) >= $one),
         tokens = min($cap, tokens + max(0, $now - at) * $perMs) - (CASE WHEN min($cap, tokens + max(0, $now - at) * $perMs) >= $one THEN 1 ELSE 0 END),
         at = max(at, $now),
         span_ms = $span
       RETURNING tokens, ok`,
    ).get({ key: b.key, cap: b.capacity, now, perMs: b.perMs, one: ONE_TOKEN, span: b.capacity / b.perMs }) as { tokens: number; ok: number };
    return row.ok ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: retryAfter(row.tokens, b) };
  }

  async acquireLease(caller: string, limit: number): Promise<LeaseResult> {
    const now = this.keeper.now();
    const id = this.keeper.newId();
    const running = this.tx(() => {
      this.q("DELETE FROM leases WHERE caller = ? AND expires_at <= ?").run(caller, now);
      const n = Number((this.q("SELECT count(*) AS n FROM leases WHERE caller = ?").get(caller) as { n: number }).n);
      if (n < limit) this.q("INSERT INTO leases (id, caller, expires_at) VALUES (?, ?, ?)").run(id, caller, this.keeper.expiresAt());
      return n;
    });
    if (running >= limit) return { ok: false, running };
    this.keeper.hold(id);
    let released = false;
    return {
      ok: true,
      release: async () => {
        if (released) return;
        released = true;
        this.keeper.drop(id);
        if (!this.closed) this.q("DELETE FROM leases WHERE id = ?").run(id);
      },
    };
  }

  /** Marks every lapsed pending or decided approval expired (the partial index holds only those). */
  private expireApprovals(now: number): void {
    this.q("UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved', 'denied') AND expires_at <= ?").run(now);
  }

  async checkApproval(req: ApprovalRequest, now: number): Promise<ApprovalCheck> {
    this.tick(now);
    return this.tx((): ApprovalCheck => {
      this.expireApprovals(now);
      const rows = this.q("SELECT * FROM approvals WHERE skill = ? AND caller = ? AND input_digest = ? AND rule = ? AND status IN ('approved', 'denied', 'pending') ORDER BY seq").all(
        req.skill,
        req.caller,
        req.inputDigest,
        req.rule,
      ) as unknown as ApprovalRow[];
      const approved = rows.find((r) => r.status === "approved");
      if (approved) {
        if (approved.mode === "single-use") {
          this.q("UPDATE approvals SET status = 'used', used_at = ? WHERE id = ?").run(now, approved.id);
          return { kind: "run", approval: { ...rowToApproval(approved), status: "used", usedAt: new Date(now).toISOString() } };
        }
        return { kind: "run", approval: rowToApproval(approved) };
      }
      const denied = rows.find((r) => r.status === "denied");
      if (denied) return { kind: "denied", approval: rowToApproval(denied) };
      const pending = rows.find((r) => r.status === "pending");
      if (pending) return { kind: "pending", approval: rowToApproval(pending), created: false };
      for (const [per, max] of [
        ["caller", req.maxPendingPerCaller],
        ["skill", req.maxPendingPerSkill],
      ] as const) {
        // Counting stops at the cap: the cost is bounded whatever the number of approvals.
        const c = this.q(`SELECT count(*) AS n, min(expires_at) AS oldest FROM (SELECT expires_at FROM approvals WHERE ${per} = ? AND status = 'pending' LIMIT ?)`).get(
          per === "caller" ? req.caller : req.skill,
          max,
        ) as { n: number; oldest: number | null };
        if (Number(c.n) >= max) return { kind: "full", per, pending: Number(c.n), max, retryAfterMs: capRetryAfter(c.oldest ?? undefined, now) };
      }
      const id = newApprovalId();
      const seq = Number((this.q("SELECT coalesce(max(seq), 0) + 1 AS s FROM approvals").get() as { s: number }).s);
      this.q(
        `INSERT INTO approvals (id, skill, caller, rule, input_digest, mode, expires_in_ms, status, created_at, expires_at, input, seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
      ).run(id, req.skill, req.caller, req.rule, req.inputDigest, req.mode, req.expiresInMs, now, now + req.expiresInMs, approvalInputText(req.input), seq);
      return { kind: "pending", approval: rowToApproval(this.q("SELECT * FROM approvals WHERE id = ?").get(id) as unknown as ApprovalRow), created: true };
    });
  }

  async decideApproval(id: string, decision: "approved" | "denied", by: string, reason: string | undefined, now: number): Promise<Approval> {
    return this.tx(() => {
      this.expireApprovals(now);
      const row = this.q("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ?, expires_at = ? + expires_in_ms WHERE id = ? AND status = 'pending' RETURNING *").get(
        decision,
        now,
        by,
        reason ?? null,
        now,
        id,
      ) as ApprovalRow | undefined;
      if (row) return rowToApproval(row);
      const existing = this.q("SELECT status FROM approvals WHERE id = ?").get(id) as { status: string } | undefined;
      throw new Error(existing ? `approval ${id} is ${existing.status}, not pending` : `no approval with id ${id}`);
    });
  }

  async listApprovals(now: number, limit = 1000): Promise<Approval[]> {
    this.tx(() => this.expireApprovals(now));
    return (this.q("SELECT * FROM approvals ORDER BY seq DESC LIMIT ?").all(limit) as unknown as ApprovalRow[]).map(rowToApproval);
  }

  async importApprovals(list: Approval[]): Promise<number> {
    return this.tx(() => {
      let n = 0;
      let seq = Number((this.q("SELECT coalesce(max(seq), 0) AS s FROM approvals").get() as { s: number }).s);
      for (const a of list) {
        const r = this.q(
          `INSERT INTO approvals (id, skill, caller, rule, input_digest, mode, expires_in_ms, status, created_at, expires_at, decided_at, decided_by, reason, used_at, input, seq)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        ).run(...(approvalParams(a) as SQLInputValue[]), ++seq);
        n += Number(r.changes);
      }
      return n;
    });
  }

  async putToken(t: ApiToken): Promise<void> {
    this.q(
      `INSERT INTO tokens (id, caller, trust, role, secret_hash, secret_enc, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET caller = excluded.caller, trust = excluded.trust, role = excluded.role, secret_hash = excluded.secret_hash,
         secret_enc = excluded.secret_enc, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
    ).run(...tokenParams(t));
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const r = this.q("SELECT * FROM tokens WHERE id = ?").get(id) as TokenRow | undefined;
    return r && rowToToken(r);
  }

  async revokeToken(id: string, now: number): Promise<boolean> {
    return Number(this.q("UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?").run(now, id).changes) > 0;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (this.q("SELECT * FROM tokens ORDER BY created_at").all() as unknown as TokenRow[]).map(rowToToken);
  }

  async addAuthFailure(address: string, windowMs: number, now: number): Promise<number> {
    const r = this.q(
      `INSERT INTO auth_failures (address, count, since) VALUES ($a, 1, $now)
       ON CONFLICT (address) DO UPDATE SET
         count = CASE WHEN since + $w > $now THEN count + 1 ELSE 1 END,
         since = CASE WHEN since + $w > $now THEN since ELSE $now END
       RETURNING count`,
    ).get({ a: address, now, w: windowMs }) as { count: number };
    return Number(r.count);
  }

  async clearAuthFailures(address: string): Promise<void> {
    this.q("DELETE FROM auth_failures WHERE address = ?").run(address);
  }

  async useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean> {
    this.tick(now);
    // Inserted, or an expired record replaced: a row comes back. A live record: none does.
    const r = this.q("INSERT INTO nonces (nonce, expires_at) VALUES ($n, $e) ON CONFLICT (nonce) DO UPDATE SET expires_at = $e WHERE nonces.expires_at <= $now RETURNING nonce").get({
      n: nonce,
      e: expiresAt,
      now,
    });
    return r !== undefined;
  }

  async recordPolicyVersion(v: PolicyVersion): Promise<void> {
    this.q("INSERT INTO policy_versions (hash, version, label, document, loaded_at, loaded_by, source) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING").run(
      v.hash,
      v.version,
      v.label,
      v.document,
      Date.parse(v.loadedAt),
      v.loadedBy,
      v.source,
    );
  }

  async listPolicyVersions(): Promise<PolicyVersion[]> {
    return (this.q("SELECT * FROM policy_versions ORDER BY loaded_at DESC").all() as unknown as VersionRow[]).map(rowToVersion);
  }

  private pruneSync(now: number): void {
    this.tx(() => {
      this.q("DELETE FROM leases WHERE expires_at <= ?").run(this.keeper.now());
      this.q("DELETE FROM nonces WHERE expires_at <= ?").run(now);
      this.q("DELETE FROM buckets WHERE at + span_ms <= ?").run(now);
      this.expireApprovals(now);
      this.q("DELETE FROM approvals WHERE status IN ('expired', 'used') AND expires_at <= ?").run(now - APPROVAL_RETENTION_MS);
    });
  }

  async prune(now: number): Promise<void> {
    this.pruneSync(now);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Leases still held go with the handle: nothing renews them any more.
    this.keeper.close();
    this.closed = true;
    this.db.close();
  }
}
