/**
 * The state that outlives a process and is shared by every process and host that opens the same
 * store: rate-limit buckets, per-caller concurrency leases, approvals, API tokens, auth-failure
 * counters, replay nonces and policy versions. Every operation is atomic in the store itself (one
 * statement or one transaction), never a read-modify-write across processes. Times are epoch
 * milliseconds given by the caller, so tests can stand at the edges.
 */

export type StoreKind = "memory" | "embedded" | "postgres";

export interface BucketSpec {
  /** a hash of the rule plus the bucket key (caller, skill or both): one bucket per key in the store */
  key: string;
  /** bucket size in tokens */
  capacity: number;
  /** tokens refilled per millisecond */
  perMs: number;
}

export interface RateDecision {
  allowed: boolean;
  /** when refused: how long until one token is back */
  retryAfterMs: number;
}

export type LeaseResult = { ok: true; release: () => Promise<void> } | { ok: false; running: number };

export type ApprovalStatus = "pending" | "approved" | "denied" | "used" | "expired";
export type ApprovalMode = "single-use" | "time-boxed";

export interface Approval {
  id: string;
  skill: string;
  caller: string;
  inputDigest: string;
  /** the rule that asked for it */
  rule: string;
  mode: ApprovalMode;
  expiresInMs: number;
  status: ApprovalStatus;
  createdAt: string;
  /** pending: when the request lapses; approved/denied: until when the decision holds */
  expiresAt: string;
  decidedAt?: string;
  decidedBy?: string;
  reason?: string;
  usedAt?: string;
  /** the input being approved, as the policy's filters left it (redacted), possibly truncated */
  input?: unknown;
}

export interface ApprovalRequest {
  rule: string;
  mode: ApprovalMode;
  expiresInMs: number;
  skill: string;
  caller: string;
  inputDigest: string;
  /** what `approvals list` shows; stored only when a new request is made */
  input: unknown;
  /** pending requests allowed at once per caller and per skill */
  maxPendingPerCaller: number;
  maxPendingPerSkill: number;
}

export type ApprovalCheck =
  | { kind: "run"; approval: Approval }
  | { kind: "denied"; approval: Approval }
  | { kind: "pending"; approval: Approval; created: boolean }
  | { kind: "full"; per: "caller" | "skill"; pending: number; max: number; retryAfterMs: number };

export interface ApiToken {
  id: string;
  caller: string;
  trust: string;
  role: string;
  /** slow hash of the secret (scrypt, with its parameters and salt) */
  secretHash: string;
  /** for HMAC tokens: the secret, encrypted with the server's key */
  secretEnc?: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

export interface PolicyVersion {
  /** the policy's version string (`label@hash` or the hash) */
  version: string;
  /** the `version:` label in the file, if any */
  label: string | null;
  /** sha-256 of the document */
  hash: string;
  document: string;
  /** first time this version was loaded */
  loadedAt: string;
  /** user@host, or the API caller that opened the host */
  loadedBy: string;
  /** the policy file it came from */
  source: string;
}

export interface StateStore {
  readonly kind: StoreKind;
  /** where it lives: a file path, or a URL with the password masked */
  readonly location: string;

  /** Takes one token from a bucket (created full); atomic across every user of the store. */
  takeToken(bucket: BucketSpec, now: number): Promise<RateDecision>;

  /**
   * Takes one of `limit` concurrency slots of a caller. A lease expires `leaseTtlMs` (wall clock)
   * after its last renewal; the store renews the leases it holds until they are released, so only
   * the leases of a holder that died lapse.
   */
  acquireLease(caller: string, limit: number): Promise<LeaseResult>;

  /** The approval that covers a request, or a new pending one (refused past the pending caps). */
  checkApproval(req: ApprovalRequest, now: number): Promise<ApprovalCheck>;
  /** Approves or denies a pending request; throws a clear Error for an unknown, decided or lapsed id. */
  decideApproval(id: string, decision: "approved" | "denied", by: string, reason: string | undefined, now: number): Promise<Approval>;
  /** Approvals, newest first, lapsed ones marked expired; at most `limit`. */
  listApprovals(now: number, limit?: number): Promise<Approval[]>;
  /** Adds approvals kept elsewhere (the old approvals.json); ids already present are left alone. */
  importApprovals(list: Approval[]): Promise<number>;

  putToken(token: ApiToken): Promise<void>;
  getToken(id: string): Promise<ApiToken | undefined>;
  /** Whether a token was there to revoke. */
  revokeToken(id: string, now: number): Promise<boolean>;
  listTokens(): Promise<ApiToken[]>;

  /** Counts one failed authentication from an address; returns the count within the window. */
  addAuthFailure(address: string, windowMs: number, now: number): Promise<number>;
  clearAuthFailures(address: string): Promise<void>;

  /** Records a nonce until `expiresAt`; false when it is already recorded and not expired (a replay). */
  useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean>;

  /** Records a policy version (once per hash; later loads keep the first record). */
  recordPolicyVersion(v: PolicyVersion): Promise<void>;
  /** Every recorded version, newest first. */
  listPolicyVersions(): Promise<PolicyVersion[]>;

  /** Drops expired leases, nonces, full buckets and long-lapsed approvals. */
  prune(now: number): Promise<void>;
  close(): Promise<void>;
}

/** Tunables shared by the store implementations. */
export interface StoreOptions {
  /** a lease not renewed for this long is taken to belong to a dead host; @default 20000 */
  leaseTtlMs?: number;
  /** wall clock for lease renewal (leases live in real time whatever clock the policy uses); @default Date.now */
  wallClock?: () => number;
}

export const DEFAULT_LEASE_TTL_MS = 20_000;
/** Expired and used approvals stay listed this long before they are pruned. */
export const APPROVAL_RETENTION_MS = 7 * 86_400_000;

/** Bucket arithmetic shared by every store (the SQL stores do the same in SQL). */
export function refill(tokens: number, at: number, now: number, b: BucketSpec): number {
  return Math.min(b.capacity, tokens + Math.max(0, now - at) * b.perMs);
}

export function retryAfter(tokens: number, b: BucketSpec): number {
  // Rounding noise (1 - 0.999 is not exactly 0.001) must not add a millisecond.
  return Math.max(1, Math.ceil((1 - tokens) / b.perMs - 1e-6));
}

/** Tokens at or above this count as one whole token (float noise). */
export const ONE_TOKEN = 1 - 1e-9;
