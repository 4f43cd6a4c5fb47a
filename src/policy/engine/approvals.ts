import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withLockSync } from "../../util/lock.js";
import { parseDuration } from "../../util/duration.js";
import type { ApprovalRule } from "../schema.js";

export type ApprovalStatus = "pending" | "approved" | "denied" | "used" | "expired";

export interface Approval {
  id: string;
  skill: string;
  caller: string;
  inputDigest: string;
  /** the rule that asked for it */
  rule: string;
  mode: ApprovalRule["mode"];
  expiresInMs: number;
  status: ApprovalStatus;
  createdAt: string;
  /** pending: when the request lapses; approved/denied: until when the decision holds */
  expiresAt: string;
  decidedAt?: string;
  decidedBy?: string;
  reason?: string;
  usedAt?: string;
}

/** SHA-256 of the input as canonical JSON (keys sorted), so equal inputs match. */
export function inputDigest(input: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v !== null && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return createHash("sha256").update(JSON.stringify(canon(input))).digest("hex");
}

/**
 * Pending and decided approvals, kept in `<state>/approvals.json`: written atomically
 * (temporary file + rename) under a cross-process lock, read afresh on every use, so a
 * decision made by `skillbox approvals approve` in another process is seen at once.
 */
export class ApprovalStore {
  readonly file: string;
  private readonly lockDir: string;

  constructor(
    readonly stateDir: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.file = join(stateDir, "approvals.json");
    this.lockDir = `${this.file}.lock`;
  }

  private read(): Approval[] {
    try {
      const data = JSON.parse(readFileSync(this.file, "utf8")) as { approvals?: Approval[] };
      return Array.isArray(data.approvals) ? data.approvals : [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new Error(`${this.file} is not a valid approvals file: ${(err as Error).message}`);
    }
  }

  private write(list: Approval[]): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ approvals: list }, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  private update<T>(fn: (list: Approval[], now: number) => T): T {
    mkdirSync(this.stateDir, { recursive: true });
    return withLockSync(this.lockDir, () => {
      const list = this.read();
      const now = this.clock();
      for (const a of list) if ((a.status === "pending" || a.status === "approved" || a.status === "denied") && Date.parse(a.expiresAt) <= now) a.status = "expired";
      const out = fn(list, now);
      this.write(list);
      return out;
    });
  }

  /** Every approval, newest first, with lapsed ones marked expired. */
  list(): Approval[] {
    return this.update((list) => [...list].reverse());
  }

  /**
   * For a call that a rule says needs approval: `run` when an approval covers this skill,
   * input and caller (a single-use one is used up), `denied` when one was refused, else the
   * pending request (an existing one, or a new one).
   */
  check(rule: ApprovalRule, ruleName: string, skill: string, caller: string, digest: string): { kind: "run"; approval: Approval } | { kind: "denied"; approval: Approval } | { kind: "pending"; approval: Approval; created: boolean } {
    return this.update((list, now) => {
      const mine = list.filter((a) => a.skill === skill && a.caller === caller && a.inputDigest === digest && a.rule === ruleName);
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
      const expiresInMs = parseDuration(rule.expiresIn);
      const a: Approval = {
        id: `apr_${randomBytes(6).toString("hex")}`,
        skill,
        caller,
        inputDigest: digest,
        rule: ruleName,
        mode: rule.mode,
        expiresInMs,
        status: "pending",
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + expiresInMs).toISOString(),
      };
      list.push(a);
      return { kind: "pending", approval: { ...a }, created: true };
    });
  }

  /** Approves or denies a pending request. Throws with a clear message for an unknown, decided or lapsed one. */
  decide(id: string, decision: "approved" | "denied", by: string, reason?: string): Approval {
    return this.update((list, now) => {
      const a = list.find((x) => x.id === id);
      if (!a) throw new Error(`no approval with id ${id}`);
      if (a.status !== "pending") throw new Error(`approval ${id} is ${a.status}, not pending`);
      a.status = decision;
      a.decidedAt = new Date(now).toISOString();
      a.decidedBy = by;
      a.expiresAt = new Date(now + a.expiresInMs).toISOString();
      if (reason !== undefined) a.reason = reason;
      return { ...a };
    });
  }
}
