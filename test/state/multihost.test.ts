import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStateStore } from "../../dist/src/state/open.js";
import { BIN, ROOT, fixture, sleep, writeSkill, type Fixture } from "../helpers.js";
import { freshDatabase, startPostgres, type PgServer } from "../pg-server.js";

const server: PgServer = await startPostgres();
if ("skip" in server) console.warn(`\n⚠ PostgreSQL multi-host state tests SKIPPED: ${server.skip}\n`);
afterAll(() => {
  if (!("skip" in server)) server.stop();
});

const DIST = join(ROOT, "dist", "src", "index.js");
const SCRIPT = join(ROOT, "test", "fixtures", "state-host.mjs");
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill("SIGKILL");
  children.clear();
});

const freshDb = () => freshDatabase(server, "m");

function setup(policy: string): Fixture & { policy: string } {
  const fx = fixture();
  writeSkill(fx.skills, "noop", "", { "index.js": "export default async (input) => ({ got: input });" });
  writeSkill(fx.skills, "deploy", "", { "index.js": "export default async (input) => ({ deployed: input.target });" });
  writeSkill(fx.skills, "slow", "limits: { timeoutMs: 20000 }\n", { "index.js": "export default async () => { const t = Date.now(); while (Date.now() - t < 15000) {} return 1; };" });
  const file = join(fx.root, "skillbox.policy.yaml");
  writeFileSync(file, policy);
  return { ...fx, policy: file };
}

/** Runs a host process to its end; resolves with its stdout. */
function hostProcess(fx: ReturnType<typeof setup>, config: Record<string, unknown>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--no-node-snapshot", SCRIPT, DIST, JSON.stringify({ skillsDir: fx.skills, workspace: fx.workspace, policy: fx.policy, audit: fx.auditFile, ...config })], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("exit", (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `skillbox run` as a user types it. */
function run(fx: ReturnType<typeof setup>, ...args: string[]): Promise<{ code: number | null; result: { ok: boolean; error?: { code: string; details?: { approvalId?: string } } } }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, "run", ...args, "--skills", fx.skills, "--policy", fx.policy, "--workspace", fx.workspace, "--audit", fx.auditFile, "--json"], {
      cwd: fx.root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.on("exit", (code) => {
      children.delete(child);
      resolve({ code, result: JSON.parse(stdout || "{}") });
    });
  });
}

const stores: [string, () => Promise<string | undefined>][] = [
  ["embedded (default state folder)", async () => undefined],
  ["PostgreSQL", freshDb],
];

for (const [kind, stateFor] of stores) {
  describe.skipIf(kind === "PostgreSQL" && "skip" in server)(`shared state across processes: ${kind}`, () => {
    it("three `skillbox run` processes share one bucket: 1/min, burst 1 -> one runs, two are E_RATE_LIMITED (exit 3)", async () => {
      const fx = setup("version: rl\nrateLimits:\n  - { per: caller, limit: 1/min, burst: 1 }\n");
      const state = await stateFor();
      const extra = state ? ["--state", state] : [];
      const runs = await Promise.all([0, 1, 2].map(() => run(fx, "noop", "--caller", "alice", "--input", "{}", ...extra)));
      expect(runs.map((r) => r.code).sort()).toEqual([0, 3, 3]);
      expect(runs.filter((r) => r.code === 3).map((r) => r.result.error?.code)).toEqual(["E_RATE_LIMITED", "E_RATE_LIMITED"]);
    });

    it("a bucket shared by two host processes allows exactly its limit", async () => {
      const fx = setup("version: rl\nrateLimits:\n  - { per: caller, limit: 5/hour }\n");
      const state = await stateFor();
      const cfg = { mode: "calls", calls: 6, ...(state ? { state } : {}) };
      const [a, b] = await Promise.all([hostProcess(fx, cfg), hostProcess(fx, cfg)]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const codes = [...(JSON.parse(a.stdout) as string[]), ...(JSON.parse(b.stdout) as string[])];
      expect(codes.filter((c) => c === "ok")).toHaveLength(5);
      expect(codes.filter((c) => c === "E_RATE_LIMITED")).toHaveLength(7);
    });

    it("an approval decided through one host is honoured by another", async () => {
      const fx = setup("version: ap\napprovals:\n  - { name: deploys, match: { skill: deploy }, expiresIn: 1h, mode: single-use }\n");
      const state = await stateFor();
      const extra = state ? ["--state", state] : [];
      const first = await run(fx, "deploy", "--caller", "alice", "--input", '{"target":"prod"}', ...extra);
      expect(first.code).toBe(3);
      const id = first.result.error?.details?.approvalId;
      expect(id).toMatch(/^apr_/);
      const decided = await hostProcess(fx, { mode: "decide", approvalId: id, ...(state ? { state } : {}) });
      expect(decided.code).toBe(0);
      expect(JSON.parse(decided.stdout)).toMatchObject({ id, status: "approved", decidedBy: "host-b", input: { target: "prod" } });
      const second = await run(fx, "deploy", "--caller", "alice", "--input", '{"target":"prod"}', ...extra);
      expect(second).toMatchObject({ code: 0, result: { ok: true } });
      // Single use: the next call asks again.
      expect((await run(fx, "deploy", "--caller", "alice", "--input", '{"target":"prod"}', ...extra)).code).toBe(3);
    });

    it("a host killed with SIGKILL while holding a concurrency lease releases it within the lease expiry", async () => {
      const fx = setup("version: cc\nconcurrency: { perCaller: 1 }\n");
      const state = await stateFor();
      const leases = async (): Promise<number> => {
        if (state) {
          const c = new pg.Client({ connectionString: state });
          await c.connect();
          try {
            return Number((await c.query("SELECT count(*) AS n FROM skillbox_leases WHERE caller = 'victim'")).rows[0].n);
          } catch {
            return 0;
          } finally {
            await c.end();
          }
        }
        try {
          const db = new DatabaseSync(join(fx.workspace, ".skillbox", "state.db"), { readOnly: true, timeout: 5000 });
          try {
            return Number((db.prepare("SELECT count(*) AS n FROM leases WHERE caller = 'victim'").get() as { n: number }).n);
          } finally {
            db.close();
          }
        } catch {
          return 0;
        }
      };
      const holder = spawn(
        process.execPath,
        [
          "--no-node-snapshot",
          SCRIPT,
          DIST,
          JSON.stringify({
            skillsDir: fx.skills,
            workspace: fx.workspace,
            policy: fx.policy,
            audit: fx.auditFile,
            mode: "hold",
            caller: "victim",
            trust: "trusted",
            leaseTtlMs: 1000,
            ...(state ? { state } : {}),
          }),
        ],
        { stdio: "ignore" },
      );
      children.add(holder);
      for (let i = 0; i < 600 && (await leases()) === 0; i++) await sleep(50);
      expect(await leases()).toBe(1);
      holder.kill("SIGKILL");
      const killedAt = Date.now();
      const store = await openStateStore(state ?? join(fx.workspace, ".skillbox"), { workspace: fx.workspace });
      try {
        let lease = await store.acquireLease("victim", 1);
        while (!lease.ok && Date.now() - killedAt < 20_000) {
          await sleep(50);
          lease = await store.acquireLease("victim", 1);
        }
        expect(lease.ok).toBe(true);
        // Released by expiry (1 s here; 20 s by default), not by anyone cleaning up.
        expect(Date.now() - killedAt).toBeGreaterThanOrEqual(500);
        if (lease.ok) await lease.release();
      } finally {
        await store.close();
      }
    });
  });
}

describe("the state store at the command line", () => {
  it("`--state` that cannot be opened is a clear error (exit 2), not a stack trace", () => {
    const fx = setup("version: x\n");
    const r = spawnSync(process.execPath, [BIN, "approvals", "list", "--state", "postgres://nobody@127.0.0.1:1/none"], { cwd: fx.root, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot open the state store postgres:\/\/nobody@127\.0\.0\.1:1\/none/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
