import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillError, type SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

// The JSON text of { t: "x".repeat(n) } is n + 8 bytes.
const sized = (bytes: number, ch = "x") => ({ t: ch.repeat(bytes - 8) });

describe("size caps, fallback depth and approvals decided through the API", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    writeSkill(fx.skills, "echo", "", { "index.js": "export default async (i) => i;" });
    // Returns a string whose JSON text is exactly i.n bytes (quotes included).
    writeSkill(fx.skills, "emit", "limits: { outputBytes: 1000 }\n", { "index.js": "export default async (i) => 'y'.repeat(i.n - 2);" });
    // f0 -> f1 -> f2 -> f3 -> f4, all failing; c1 <-> c2 fail into each other.
    for (let i = 0; i < 5; i++) writeSkill(fx.skills, `f${i}`, i < 4 ? `fallback: { skill: f${i + 1} }\n` : "", { "index.js": `export default async () => { throw new Error("f${i} failed"); };` });
    writeSkill(fx.skills, "g0", "fallback: { skill: g1 }\n", { "index.js": "export default async () => { throw new Error('g0 failed'); };" });
    writeSkill(fx.skills, "g1", "fallback: { skill: g2 }\n", { "index.js": "export default async () => { throw new Error('g1 failed'); };" });
    writeSkill(fx.skills, "g2", "fallback: { skill: g3 }\n", { "index.js": "export default async () => { throw new Error('g2 failed'); };" });
    writeSkill(fx.skills, "g3", "", { "index.js": "export default async () => 'from g3';" });
    writeSkill(fx.skills, "c1", "fallback: { skill: c2 }\n", { "index.js": "export default async () => { throw new Error('c1 failed'); };" });
    writeSkill(fx.skills, "c2", "fallback: { skill: c1 }\n", { "index.js": "export default async () => { throw new Error('c2 failed'); };" });
    writeSkill(fx.skills, "cleanup", 'permissions: { files: [{ path: "${workspace}/**", access: [delete] }] }\n', { "index.js": "export default async (i) => ({ done: i.what });" });
    const policy = join(fx.root, "policy.yaml");
    writeFileSync(policy, "version: 1\napprovals:\n  - { name: deletes, match: { access: delete }, expiresIn: 1h, mode: single-use }\n");
    host = await fx.open({ maxInputBytes: 100, policy, stateDir: join(fx.root, "state") });
  });
  afterAll(async () => host.close());

  describe("input cap (maxInputBytes, on the JSON text in bytes)", () => {
    it("accepts an input of exactly the cap", async () => {
      const r = await host.call("echo", sized(100));
      expect(r.ok && r.output).toEqual(sized(100));
    });

    it("refuses one byte more before anything runs, without echoing the input", async () => {
      const r = await host.call("echo", sized(101));
      expect(!r.ok && r.error).toMatchObject({ code: "E_INPUT_INVALID", message: expect.stringMatching(/101 bytes, more than the cap of 100/) });
      expect(r.attempts).toBe(0);
      expect(JSON.stringify(r)).not.toContain("x".repeat(50));
    });

    it("counts bytes, not characters", async () => {
      // 47 two-byte characters: 55 characters of JSON, 102 bytes.
      const r = await host.call("echo", { t: "é".repeat(47) });
      expect(!r.ok && r.error.code).toBe("E_INPUT_INVALID");
    });
  });

  describe("output cap (limits.outputBytes)", () => {
    it("passes an output of exactly the cap", async () => {
      const r = await host.call("emit", { n: 1000 });
      expect(r.ok && (r.output as string).length).toBe(998);
    });

    it("refuses one byte more as E_OUTPUT_INVALID, naming the cap", async () => {
      const r = await host.call("emit", { n: 1001 });
      expect(!r.ok && r.error).toMatchObject({ code: "E_OUTPUT_INVALID", message: expect.stringMatching(/outputBytes \(1000\)/) });
    });

    it("refuses a far larger output without carrying it back", async () => {
      const r = await host.call("emit", { n: 5_000_000 });
      expect(!r.ok && r.error.code).toBe("E_OUTPUT_INVALID");
      expect(JSON.stringify(r).length).toBeLessThan(10_000);
    });
  });

  describe("fallback depth (MAX_FALLBACK_DEPTH = 3)", () => {
    const started = async () => (await fx.events()).filter((e) => e["event"] === "call.start").map((e) => e["skill"]);

    it("a chain of three fallbacks runs to its end", async () => {
      const r = await host.call("g0", {});
      expect(r.ok && r.output).toBe("from g3");
      expect(r.fallback).toBe("g1");
    });

    it("a fourth fallback is not run: the chain stops with an error that says so", async () => {
      const r = await host.call("f0", {});
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.message).toMatch(/fallback chain deeper than 3; stopped at f4/);
      const skills = await started();
      expect(skills).toContain("f3");
      expect(skills).not.toContain("f4");
    });

    it("two skills falling back to each other end, after the same bound", async () => {
      const r = await host.call("c1", {});
      expect(!r.ok && r.error.message).toMatch(/fallback chain deeper than 3/);
    });
  });

  describe("host.decideApproval", () => {
    const caller = { caller: { id: "alice", trust: "trusted" } } as const;
    const pending = async (what: string) => {
      const r = await host.call("cleanup", { what }, caller);
      expect(!r.ok && r.error.code).toBe("E_APPROVAL_REQUIRED");
      return (!r.ok && (r.error.details as { approvalId: string }).approvalId) as string;
    };

    it("approve: the same call then runs once, and the decision is logged with who and why", async () => {
      const id = await pending("old logs");
      const a = await host.decideApproval(id, "approve", { by: "ops-bob", reason: "scheduled" });
      expect(a).toMatchObject({ id, status: "approved", decidedBy: "ops-bob" });
      const run = await host.call("cleanup", { what: "old logs" }, caller);
      expect(run.ok && run.output).toEqual({ done: "old logs" });
      const again = await host.call("cleanup", { what: "old logs" }, caller);
      expect(!again.ok && again.error.code).toBe("E_APPROVAL_REQUIRED");
      const decided = (await fx.events()).find((e) => e["event"] === "approval.decided" && e["approvalId"] === id);
      expect(decided).toMatchObject({ decision: "approved", by: "ops-bob", reason: "scheduled" });
    });

    it("deny: the call is refused as E_PERMISSION_DENIED naming the approval; the default decider is 'api'", async () => {
      const id = await pending("everything");
      expect(await host.decideApproval(id, "deny", { reason: "no" })).toMatchObject({ status: "denied", decidedBy: "api" });
      const r = await host.call("cleanup", { what: "everything" }, caller);
      expect(!r.ok && r.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { approvalId: id } });
      expect(r.attempts).toBe(0);
    });

    it("an unknown or already decided id is E_INPUT_INVALID, and changes nothing", async () => {
      // Approvals live in the shared state store: deciding one is asynchronous.
      const wrong: unknown = await host.decideApproval("apr_nope", "approve").catch((err: unknown) => err);
      expect(wrong).toBeInstanceOf(SkillError);
      expect(wrong).toMatchObject({ code: "E_INPUT_INVALID" });
      const id = await pending("twice");
      await host.decideApproval(id, "deny");
      await expect(host.decideApproval(id, "approve")).rejects.toThrow(/not pending/);
      const r = await host.call("cleanup", { what: "twice" }, caller);
      expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    });
  });
});
