import { LeaseKeeper } from "./leases.js";
import { capRetryAfter, newApprovalId, approvalInputText } from "./rows.js";
import {
  APPROVAL_RETENTION_MS,
  ONE_TOKEN,
  refill,
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

const LIVE = new Set(["pending", "approved", "denied"]);

/**
 * State in this process's memory only: nothing is shared and nothing outlives the process. For
 * tests, benchmarks and embedders that run exactly one host (`state: "memory"`).
 */
export class MemoryStateStore implements StateStore {
  readonly kind = "memory" as const;
  readonly location = "memory";
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly leases = new Map<string, { caller: string; expiresAt: number }>();
  private readonly byCaller = new Map<string, Set<string>>();
  private readonly approvals = new Map<string, Approval>();
  /** approval ids by skill, caller, digest and rule */
  private readonly byRequest = new Map<string, string[]>();
  private readonly pendingBy = { caller: new Map<string, Set<string>>(), skill: new Map<string, Set<string>>() };
  private readonly tokens = new Map<string, ApiToken>();
  private readonly failures = new Map<string, { count: number; since: number }>();
  private readonly nonces = new Map<string, number>();
  private readonly versions = new Map<string, PolicyVersion>();
  private readonly keeper: LeaseKeeper;

  constructor(options: StoreOptions = {}) {
    this.keeper = new LeaseKeeper(
      options,
      async (ids, expiresAt) => {
        for (const id of ids) {
          const l = this.leases.get(id);
          if (l) l.expiresAt = expiresAt;
        }
      },
      () => undefined,
    );
  }

  async takeToken(b: BucketSpec, now: number): Promise<RateDecision> {
    const cur = this.buckets.get(b.key);
    const tokens = cur ? refill(cur.tokens, cur.at, now, b) : b.capacity;
    const at = Math.max(cur?.at ?? now, now);
    if (tokens >= ONE_TOKEN) {
      this.buckets.set(b.key, { tokens: tokens - 1, at });
      return { allowed: true, retryAfterMs: 0 };
    }
    this.buckets.set(b.key, { tokens, at });
    return { allowed: false, retryAfterMs: retryAfter(tokens, b) };
  }

  async acquireLease(caller: string, limit: number): Promise<LeaseResult> {
    const now = this.keeper.now();
    const mine = this.byCaller.get(caller) ?? new Set<string>();
    for (const id of mine) {
      if ((this.leases.get(id)?.expiresAt ?? 0) > now) continue;
      this.leases.delete(id);
      mine.delete(id);
    }
    if (mine.size >= limit) return { ok: false, running: mine.size };
    const id = this.keeper.newId();
    this.leases.set(id, { caller, expiresAt: this.keeper.expiresAt() });
    mine.add(id);
    this.byCaller.set(caller, mine);
    this.keeper.hold(id);
    let released = false;
    return {
      ok: true,
      release: async () => {
        if (released) return;
        released = true;
        this.keeper.drop(id);
        this.leases.delete(id);
        mine.delete(id);
        if (mine.size === 0 && this.byCaller.get(caller) === mine) this.byCaller.delete(caller);
      },
    };
  }

  /** Marks a lapsed approval expired and takes it off the pending counts. */
  private settle(a: Approval, now: number): Approval {
    if (LIVE.has(a.status) && Date.parse(a.expiresAt) <= now) {
      if (a.status === "pending") this.unpend(a);
      a.status = "expired";
    }
    return a;
  }

  private indexPending(a: Approval): void {
    for (const [per, key] of [
      ["caller", a.caller],
      ["skill", a.skill],
    ] as const) {
      const set = this.pendingBy[per].get(key) ?? new Set<string>();
      set.add(a.id);
      this.pendingBy[per].set(key, set);
    }
  }

  private unpend(a: Approval): void {
    this.pendingBy.caller.get(a.caller)?.delete(a.id);
    this.pendingBy.skill.get(a.skill)?.delete(a.id);
  }

  private pendingCount(per: "caller" | "skill", key: string, now: number): { n: number; oldest: number | undefined } {
    const set = this.pendingBy[per].get(key);
    let oldest: number | undefined;
    for (const id of [...(set ?? [])]) {
      const a = this.approvals.get(id);
      if (a) this.settle(a, now);
      if (a?.status === "pending") oldest = Math.min(oldest ?? Infinity, Date.parse(a.expiresAt));
    }
    return { n: set?.size ?? 0, oldest };
  }

  async checkApproval(req: ApprovalRequest, now: number): Promise<ApprovalCheck> {
    const rk = `${req.skill}\0${req.caller}\0${req.inputDigest}\0${req.rule}`;
    const ids = this.byRequest.get(rk) ?? [];
    const mine = ids
      .map((id) => this.approvals.get(id))
      .filter((a): a is Approval => a !== undefined)
      .map((a) => this.settle(a, now));
    const approved = mine.find((a) => a.status === "approved");
    if (approved) {
      if (approved.mode === "single-use") {
        approved.status = "used";
        approved.usedAt = new Date(now).toISOString();
      }
      return { kind: "run", approval: { ...approved } };
    }
    const denied = mine.find((a) => a.status === "denied");
    if (denied) return { kind: "denied", approval: { ...denied } };
    const pending = mine.find((a) => a.status === "pending");
    if (pending) return { kind: "pending", approval: { ...pending }, created: false };
    for (const [per, key, max] of [
      ["caller", req.caller, req.maxPendingPerCaller],
      ["skill", req.skill, req.maxPendingPerSkill],
    ] as const) {
      const { n, oldest } = this.pendingCount(per, key, now);
      if (n >= max) return { kind: "full", per, pending: n, max, retryAfterMs: capRetryAfter(oldest, now) };
    }
    const a: Approval = {
      id: newApprovalId(),
      skill: req.skill,
      caller: req.caller,
      inputDigest: req.inputDigest,
      rule: req.rule,
      mode: req.mode,
      expiresInMs: req.expiresInMs,
      status: "pending",
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + req.expiresInMs).toISOString(),
      input: JSON.parse(approvalInputText(req.input)) as unknown,
    };
    this.approvals.set(a.id, a);
    this.byRequest.set(rk, [...ids.filter((id) => this.approvals.has(id)), a.id]);
    this.indexPending(a);
    return { kind: "pending", approval: { ...a }, created: true };
  }

  async decideApproval(id: string, decision: "approved" | "denied", by: string, reason: string | undefined, now: number): Promise<Approval> {
    const found = this.approvals.get(id);
    if (!found) throw new Error(`no approval with id ${id}`);
    const a = this.settle(found, now);
    if (a.status !== "pending") throw new Error(`approval ${id} is ${a.status}, not pending`);
    this.unpend(a);
    a.status = decision;
    a.decidedAt = new Date(now).toISOString();
    a.decidedBy = by;
    a.expiresAt = new Date(now + a.expiresInMs).toISOString();
    if (reason !== undefined) a.reason = reason;
    return { ...a };
  }

  async listApprovals(now: number, limit = 1000): Promise<Approval[]> {
    return [...this.approvals.values()]
      .reverse()
      .slice(0, limit)
      .map((a) => ({ ...this.settle(a, now) }));
  }

  async importApprovals(list: Approval[]): Promise<number> {
    let n = 0;
    for (const a of list) {
      if (this.approvals.has(a.id)) continue;
      this.approvals.set(a.id, { ...a });
      const rk = `${a.skill}\0${a.caller}\0${a.inputDigest}\0${a.rule}`;
      this.byRequest.set(rk, [...(this.byRequest.get(rk) ?? []), a.id]);
      if (a.status === "pending") this.indexPending(a);
      n++;
    }
    return n;
  }

  async putToken(t: ApiToken): Promise<void> {
    this.tokens.set(t.id, { ...t });
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const t = this.tokens.get(id);
    return t && { ...t };
  }

  async revokeToken(id: string, now: number): Promise<boolean> {
    const t = this.tokens.get(id);
    if (!t) return false;
    t.revokedAt ??= new Date(now).toISOString();
    return true;
  }

  async listTokens(): Promise<ApiToken[]> {
    return [...this.tokens.values()].map((t) => ({ ...t }));
  }

  async addAuthFailure(address: string, windowMs: number, now: number): Promise<number> {
    const f = this.failures.get(address);
    const next = f && f.since + windowMs > now ? { count: f.count + 1, since: f.since } : { count: 1, since: now };
    this.failures.set(address, next);
    return next.count;
  }

  async clearAuthFailures(address: string): Promise<void> {
    this.failures.delete(address);
  }

  async useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean> {
    const until = this.nonces.get(nonce);
    if (until !== undefined && until > now) return false;
    this.nonces.set(nonce, expiresAt);
    return true;
  }

  async recordPolicyVersion(v: PolicyVersion): Promise<void> {
    if (!this.versions.has(v.hash)) this.versions.set(v.hash, { ...v });
  }

  async listPolicyVersions(): Promise<PolicyVersion[]> {
    return [...this.versions.values()].sort((a, b) => b.loadedAt.localeCompare(a.loadedAt));
  }

  async prune(now: number): Promise<void> {
    for (const [k, until] of this.nonces) if (until <= now) this.nonces.delete(k);
    for (const [id, a] of this.approvals) {
      this.settle(a, now);
      if ((a.status === "expired" || a.status === "used") && Date.parse(a.expiresAt) + APPROVAL_RETENTION_MS <= now) this.approvals.delete(id);
    }
  }

  async close(): Promise<void> {
    this.keeper.close();
  }
}
