import { mkdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStateStore } from "../../dist/src/state/memory.js";
import { SqliteStateStore } from "../../dist/src/state/sqlite.js";
import { PgStateStore } from "../../dist/src/state/postgres.js";
import { importLegacyState } from "../../dist/src/state/open.js";
import type { ApprovalRequest, StateStore } from "../../dist/src/state/store.js";
import { bucketFor } from "../../dist/src/policy/engine/rate.js";
import { freshDatabase, startPostgres, type PgServer } from "../pg-server.js";
import { sleep, tempDir } from "../helpers.js";

const server: PgServer = await startPostgres();
if ("skip" in server) console.warn(`\n⚠ PostgreSQL state store tests SKIPPED: ${server.skip}\n`);
afterAll(() => {
  if (!("skip" in server)) server.stop();
});

const freshDb = () => freshDatabase(server, "t");

type Make = (opts?: { leaseTtlMs?: number }) => Promise<{ open: () => Promise<StateStore> }>;
const kinds: [string, Make, boolean][] = [
  [
    "memory",
    async (o = {}) => {
      const s = new MemoryStateStore(o);
      return { open: async () => s };
    },
    false,
  ],
  [
    "embedded (SQLite)",
    async (o = {}) => {
      const dir = tempDir();
      return { open: async () => new SqliteStateStore(dir, o) };
    },
    true,
  ],
  [
    "PostgreSQL",
    async (o = {}) => {
      const url = await freshDb();
      return {
        open: async () => {
          const s = new PgStateStore(url, o);
          await s.open();
          return s;
        },
      };
    },
    true,
  ],
];

const req = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  rule: "r",
  mode: "single-use",
  expiresInMs: 86_400_000,
  skill: "deploy",
  caller: "alice",
  inputDigest: "d1",
  input: { target: "prod" },
  maxPendingPerCaller: 20,
  maxPendingPerSkill: 200,
  ...over,
});

const T = (iso: string) => Date.parse(iso);
const opened: StateStore[] = [];
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
});

for (const [kind, make, shared] of kinds) {
  const skip = kind === "PostgreSQL" && "skip" in server;
  describe.skipIf(skip)(`state store: ${kind}`, () => {
    const open = async (o?: { leaseTtlMs?: number }) => {
      const m = await make(o);
      const s = await m.open();
      opened.push(s);
      return {
        s,
        again: async () => {
          const x = await m.open();
          opened.push(x);
          return x;
        },
      };
    };

    it("token buckets are exact at the edges: 60/min with burst 2, then one per second; burst defaults to N", async () => {
      const { s } = await open();
      const b = bucketFor("r0", { per: "caller", limit: "60/min", burst: 2 }, "caller:a");
      const t0 = T("2026-11-23T10:00:00Z");
      expect((await s.takeToken(b, t0)).allowed).toBe(true);
      expect((await s.takeToken(b, t0)).allowed).toBe(true);
      expect(await s.takeToken(b, t0)).toEqual({ allowed: false, retryAfterMs: 1000 });
      expect(await s.takeToken(b, t0 + 999)).toEqual({ allowed: false, retryAfterMs: 1 });
      expect((await s.takeToken(b, t0 + 1000)).allowed).toBe(true);
      expect((await s.takeToken(b, t0 + 1000)).allowed).toBe(false);
      expect((await s.takeToken({ ...b, key: "r0|caller:b" }, t0 + 1000)).allowed).toBe(true);
      const h = bucketFor("r1", { per: "skill", limit: "3/hour" }, "skill:s");
      for (let i = 0; i < 3; i++) expect((await s.takeToken(h, 0)).allowed).toBe(true);
      // refilled to 3 after a day, not 72
      for (let i = 0; i < 3; i++) expect((await s.takeToken(h, 86_400_000)).allowed).toBe(true);
      expect((await s.takeToken(h, 86_400_000)).allowed).toBe(false);
    });

    it("approvals: pending → approved → used; time-boxed until expiry; lapsed ones expire; denied refuses; the input is kept", async () => {
      const { s } = await open();
      let now = T("2026-11-23T10:00:00Z");
      const first = await s.checkApproval(req(), now);
      expect(first).toMatchObject({ kind: "pending", created: true, approval: { status: "pending", input: { target: "prod" } } });
      const id = (first as { approval: { id: string } }).approval.id;
      expect(await s.checkApproval(req(), now)).toMatchObject({ kind: "pending", created: false, approval: { id } });
      expect(((await s.checkApproval(req({ caller: "bob" }), now)) as { approval: { id: string } }).approval.id).not.toBe(id);
      now += 60_000;
      expect(await s.decideApproval(id, "approved", "ops", "looks fine", now)).toMatchObject({
        status: "approved",
        reason: "looks fine",
        decidedBy: "ops",
        expiresAt: new Date(now + 86_400_000).toISOString(),
      });
      await expect(s.decideApproval(id, "denied", "ops", undefined, now)).rejects.toThrow(/is approved, not pending/);
      await expect(s.decideApproval("apr_nope", "denied", "ops", undefined, now)).rejects.toThrow(/no approval with id apr_nope/);
      expect(await s.checkApproval(req(), now)).toMatchObject({ kind: "run" });
      expect(await s.checkApproval(req(), now)).toMatchObject({ kind: "pending", created: true });
      expect((await s.listApprovals(now)).find((a) => a.id === id)?.status).toBe("used");

      const boxed = req({ mode: "time-boxed", expiresInMs: 3_600_000, inputDigest: "box" });
      now = 0;
      const a = (await s.checkApproval(boxed, now)) as { approval: { id: string } };
      await s.decideApproval(a.approval.id, "approved", "ops", undefined, now);
      expect((await s.checkApproval(boxed, 3_600_000 - 1)).kind).toBe("run");
      expect(await s.checkApproval(boxed, 3_600_000)).toMatchObject({ kind: "pending", created: true });
      const lapsing = (await s.checkApproval(req({ inputDigest: "lapse", expiresInMs: 1000 }), 0)) as { approval: { id: string } };
      await expect(s.decideApproval(lapsing.approval.id, "approved", "ops", undefined, 1000)).rejects.toThrow(/is expired/);
      const d = (await s.checkApproval(req({ inputDigest: "x" }), 5000)) as { approval: { id: string } };
      await s.decideApproval(d.approval.id, "denied", "ops", "no", 5000);
      expect(await s.checkApproval(req({ inputDigest: "x" }), 5000)).toMatchObject({ kind: "denied", approval: { reason: "no" } });
    });

    it("approvals: pending requests are capped per caller and per skill; a lapsed one frees a place", async () => {
      const { s } = await open();
      const now = 1_000_000;
      for (let i = 0; i < 3; i++) expect((await s.checkApproval(req({ inputDigest: `c${i}`, maxPendingPerCaller: 3, expiresInMs: 1000 + i }), now)).kind).toBe("pending");
      expect(await s.checkApproval(req({ inputDigest: "c3", maxPendingPerCaller: 3 }), now)).toMatchObject({ kind: "full", per: "caller", pending: 3, max: 3, retryAfterMs: 1000 });
      // The same request again is still answered with its pending id, cap or not.
      expect((await s.checkApproval(req({ inputDigest: "c0", maxPendingPerCaller: 3 }), now)).kind).toBe("pending");
      // Another caller of the same skill: the per-skill cap.
      expect(await s.checkApproval(req({ caller: "bob", inputDigest: "b", maxPendingPerSkill: 3 }), now)).toMatchObject({ kind: "full", per: "skill", max: 3 });
      expect((await s.checkApproval(req({ inputDigest: "c3", maxPendingPerCaller: 3 }), now + 1000)).kind).toBe("pending");
    });

    it("concurrency leases: at most the limit at once, released on release; a holder that stops renewing lapses", async () => {
      // A ttl long enough that a loaded machine's event-loop stalls never outlast a renewal (every ttl/4).
      const { s, again } = await open({ leaseTtlMs: 1000 });
      const a = await s.acquireLease("alice", 2);
      const b = await s.acquireLease("alice", 2);
      expect([a.ok, b.ok]).toEqual([true, true]);
      expect(await s.acquireLease("alice", 2)).toEqual({ ok: false, running: 2 });
      expect((await s.acquireLease("bob", 2)).ok).toBe(true);
      if (a.ok) await a.release();
      const c = await s.acquireLease("alice", 2);
      expect(c.ok).toBe(true);
      // Held leases are renewed past their ttl.
      const until = Date.now() + 2500;
      while (Date.now() < until) await sleep(50);
      expect((await s.acquireLease("alice", 2)).ok).toBe(false);
      if (!shared) return;
      // A second handle (another process) holds one and dies without releasing: it lapses.
      const other = await again();
      const held = await other.acquireLease("carol", 1);
      expect(held.ok).toBe(true);
      expect((await s.acquireLease("carol", 1)).ok).toBe(false);
      await other.close();
      const started = Date.now();
      let r = await s.acquireLease("carol", 1);
      while (!r.ok && Date.now() - started < 10_000) {
        await sleep(25);
        r = await s.acquireLease("carol", 1);
      }
      expect(r.ok).toBe(true);
    });

    it("nonces are used once until they expire; auth failures count per address within a window; tokens and policy versions are kept", async () => {
      const { s } = await open();
      expect(await s.useNonce("n1", 2000, 1000)).toBe(true);
      expect(await s.useNonce("n1", 2000, 1500)).toBe(false);
      expect(await s.useNonce("n1", 3000, 2000)).toBe(true);
      expect(await s.addAuthFailure("127.0.0.1", 60_000, 0)).toBe(1);
      expect(await s.addAuthFailure("127.0.0.1", 60_000, 1000)).toBe(2);
      expect(await s.addAuthFailure("::1", 60_000, 1000)).toBe(1);
      expect(await s.addAuthFailure("127.0.0.1", 60_000, 61_000)).toBe(1);
      await s.clearAuthFailures("127.0.0.1");
      expect(await s.addAuthFailure("127.0.0.1", 60_000, 61_000)).toBe(1);
      const tok = { id: "tok_1", caller: "alice", trust: "user-verified", role: "caller", secretHash: "scrypt$x", createdAt: new Date(0).toISOString() };
      await s.putToken(tok);
      expect(await s.getToken("tok_1")).toEqual(tok);
      expect(await s.revokeToken("tok_1", 5000)).toBe(true);
      expect(await s.revokeToken("tok_nope", 5000)).toBe(false);
      expect((await s.getToken("tok_1"))?.revokedAt).toBe(new Date(5000).toISOString());
      expect(await s.listTokens()).toHaveLength(1);
      const v = { version: "v1@abc", label: "v1", hash: "abc123", document: "version: v1\n", loadedAt: new Date(1000).toISOString(), loadedBy: "ops@box", source: "/p.yaml" };
      await s.recordPolicyVersion(v);
      await s.recordPolicyVersion({ ...v, loadedBy: "later@box", loadedAt: new Date(2000).toISOString() });
      expect(await s.listPolicyVersions()).toEqual([v]);
    });

    it.skipIf(!shared)("two handles (two processes) share one bucket: concurrent takes allow exactly its size", async () => {
      const { s, again } = await open();
      const t = await again();
      const b = bucketFor("shared", { per: "caller", limit: "10/hour" }, "caller:x");
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? s : t).takeToken(b, 1000)));
      expect(results.filter((r) => r.allowed)).toHaveLength(10);
    });
  });
}

describe("migration of the file state of older versions", () => {
  it("imports approvals.json (then renames it) and the policy copies; a second start imports nothing twice", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "policies"));
    writeFileSync(join(dir, "policies", "v1@0123456789ab.yaml"), "version: v1\n");
    const old = {
      id: "apr_0123456789ab",
      skill: "deploy",
      caller: "alice",
      inputDigest: "d",
      rule: "r",
      mode: "single-use",
      expiresInMs: 86_400_000,
      status: "approved",
      createdAt: "2026-11-23T10:00:00.000Z",
      expiresAt: "2099-01-01T00:00:00.000Z",
      decidedAt: "2026-11-23T10:01:00.000Z",
      decidedBy: "cli:ops",
    };
    writeFileSync(join(dir, "approvals.json"), JSON.stringify({ approvals: [old, { junk: true }] }));
    const s = new SqliteStateStore(dir);
    expect(await importLegacyState(s, dir, () => undefined)).toEqual({ approvals: 1, versions: 1 });
    expect(existsSync(join(dir, "approvals.json"))).toBe(false);
    expect(readFileSync(join(dir, "approvals.json.imported"), "utf8")).toMatch(/apr_0123456789ab/);
    expect(await importLegacyState(s, dir, () => undefined)).toEqual({ approvals: 0, versions: 0 });
    // The imported approval is honoured.
    expect(await s.checkApproval(req({ skill: "deploy", caller: "alice", inputDigest: "d", rule: "r" }), Date.now())).toMatchObject({ kind: "run", approval: { id: old.id } });
    expect(await s.listPolicyVersions()).toMatchObject([{ version: "v1@0123456789ab", label: "v1", document: "version: v1\n", loadedBy: "imported" }]);
    await s.close();
  });
});
