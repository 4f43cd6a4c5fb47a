import { randomBytes } from "node:crypto";
import type { ApiToken, Approval, ApprovalStatus, PolicyVersion } from "./store.js";

/** An approval as the SQL stores keep it (times in epoch ms). */
export interface ApprovalRow {
  id: string;
  skill: string;
  caller: string;
  rule: string;
  input_digest: string;
  mode: string;
  expires_in_ms: number | string;
  status: string;
  created_at: number | string;
  expires_at: number | string;
  decided_at: number | string | null;
  decided_by: string | null;
  reason: string | null;
  used_at: number | string | null;
  input: string | null;
}

const iso = (ms: number | string) => new Date(Number(ms)).toISOString();

export function rowToApproval(r: ApprovalRow): Approval {
  const a: Approval = {
    id: r.id,
    skill: r.skill,
    caller: r.caller,
    inputDigest: r.input_digest,
    rule: r.rule,
    mode: r.mode === "time-boxed" ? "time-boxed" : "single-use",
    expiresInMs: Number(r.expires_in_ms),
    status: r.status as ApprovalStatus,
    createdAt: iso(r.created_at),
    expiresAt: iso(r.expires_at),
  };
  if (r.decided_at !== null) a.decidedAt = iso(r.decided_at);
  if (r.decided_by !== null) a.decidedBy = r.decided_by;
  if (r.reason !== null) a.reason = r.reason;
  if (r.used_at !== null) a.usedAt = iso(r.used_at);
  if (r.input !== null) {
    try {
      a.input = JSON.parse(r.input);
    } catch {
      a.input = null;
    }
  }
  return a;
}

export function newApprovalId(): string {
  return `apr_${randomBytes(6).toString("hex")}`;
}

/** Largest stored copy of an approval's input; a larger one keeps a preview. */
export const MAX_APPROVAL_INPUT_BYTES = 4096;

export function approvalInputText(input: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(input ?? null);
  } catch {
    return "null";
  }
  if (Buffer.byteLength(s) <= MAX_APPROVAL_INPUT_BYTES) return s;
  return JSON.stringify({ truncated: true, bytes: Buffer.byteLength(s), preview: s.slice(0, 1024) });
}

export interface TokenRow {
  id: string;
  caller: string;
  trust: string;
  role: string;
  secret_hash: string;
  secret_enc: string | null;
  created_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
}

export function rowToToken(r: TokenRow): ApiToken {
  const t: ApiToken = { id: r.id, caller: r.caller, trust: r.trust, role: r.role, secretHash: r.secret_hash, createdAt: iso(r.created_at) };
  if (r.secret_enc !== null) t.secretEnc = r.secret_enc;
  if (r.expires_at !== null) t.expiresAt = iso(r.expires_at);
  if (r.revoked_at !== null) t.revokedAt = iso(r.revoked_at);
  return t;
}

export function tokenParams(t: ApiToken): [string, string, string, string, string, string | null, number, number | null, number | null] {
  return [t.id, t.caller, t.trust, t.role, t.secretHash, t.secretEnc ?? null, Date.parse(t.createdAt), t.expiresAt ? Date.parse(t.expiresAt) : null, t.revokedAt ? Date.parse(t.revokedAt) : null];
}

export interface VersionRow {
  version: string;
  label: string | null;
  hash: string;
  document: string;
  loaded_at: number | string;
  loaded_by: string;
  source: string;
}

export function rowToVersion(r: VersionRow): PolicyVersion {
  return { version: r.version, label: r.label, hash: r.hash, document: r.document, loadedAt: iso(r.loaded_at), loadedBy: r.loaded_by, source: r.source };
}

/** The refusal an approval cap gives: when the oldest pending request lapses, one more fits. */
export function capRetryAfter(oldestExpiresAt: number | undefined, now: number): number {
  return oldestExpiresAt === undefined ? 60_000 : Math.max(1, oldestExpiresAt - now);
}

/** An approval as SQL parameters, in the column order of the import statements. */
export function approvalParams(a: Approval): (string | number | null)[] {
  const ms = (s: string | undefined) => (s === undefined ? null : Date.parse(s));
  return [
    a.id,
    a.skill,
    a.caller,
    a.rule,
    a.inputDigest,
    a.mode,
    a.expiresInMs,
    a.status,
    Date.parse(a.createdAt),
    Date.parse(a.expiresAt),
    ms(a.decidedAt),
    a.decidedBy ?? null,
    a.reason ?? null,
    ms(a.usedAt),
    a.input === undefined ? null : approvalInputText(a.input),
  ];
}
