import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { MemoryStateStore } from "../../dist/src/state/memory.js";
import { BIN, fixture, writeSkill, type Fixture } from "../helpers.js";

let host: SkillHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

function setup(policy: string): Fixture & { policy: string } {
  const fx = fixture();
  writeSkill(fx.skills, "noop", "", { "index.js": "export default async (input) => ({ got: input });" });
  const file = join(fx.root, "skillbox.policy.yaml");
  writeFileSync(file, policy);
  return { ...fx, policy: file };
}

const cli = (fx: Fixture, ...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: fx.root, encoding: "utf8" });

describe("the policy engine on the shared state", () => {
  it("a hot reload keeps the buckets of rules that did not change; a changed rule starts a new bucket", async () => {
    const fx = setup("version: v1\nrateLimits:\n  - { per: caller, limit: 1/hour, burst: 1 }\n");
    let now = Date.parse("2026-11-23T10:00:00Z");
    host = await fx.open({ policy: fx.policy, clock: () => now });
    expect((await host.call("noop", {}, { caller: { id: "a" } })).ok).toBe(true);
    expect(await host.call("noop", {}, { caller: { id: "a" } })).toMatchObject({ ok: false, error: { code: "E_RATE_LIMITED" } });
    // Same rule, another label and another section: the bucket (empty) is kept.
    writeFileSync(fx.policy, "version: v2\nrateLimits:\n  - { per: caller, limit: 1/hour, burst: 1 }\nconcurrency: { perCaller: 8 }\n");
    expect(host.reloadPolicy()).toBe(true);
    expect(await host.call("noop", {}, { caller: { id: "a" } })).toMatchObject({ ok: false, error: { code: "E_RATE_LIMITED" } });
    // The rule itself changed: a new bucket.
    writeFileSync(fx.policy, "version: v3\nrateLimits:\n  - { per: caller, limit: 2/hour, burst: 1 }\n");
    expect(host.reloadPolicy()).toBe(true);
    expect((await host.call("noop", {}, { caller: { id: "a" } })).ok).toBe(true);
    now += 1;
    // Every version loaded is recorded, with who loaded it.
    const versions = JSON.parse(cli(fx, "policy", "versions", "--json", "--workspace", fx.workspace).stdout) as { version: string; loadedBy: string }[];
    expect(versions.map((v) => v.version.split("@")[0]).sort()).toEqual(["v1", "v2", "v3"]);
    expect(versions[0]!.loadedBy).toMatch(/^.+@.+$/);
    const table = cli(fx, "policy", "versions", "--workspace", fx.workspace);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/v3@[0-9a-f]{12}/);
    const diff = cli(fx, "policy", "diff", "v1", "v3", "--workspace", fx.workspace);
    expect(diff.status).toBe(0);
    expect(diff.stdout).toMatch(/v1@\w+ → v3@\w+/);
  });

  it("pending approvals are capped per caller: past the cap, E_RATE_LIMITED says why; the stored input is redacted by the filters", async () => {
    const fx = setup(
      "version: ap\nfilters:\n  rules:\n    - { name: no-ssn, pattern: '/\\b\\d{3}-\\d{2}-\\d{4}\\b/', on: [input], action: redact }\napprovals:\n  - { name: all, expiresIn: 1h, mode: single-use }\n",
    );
    host = await fx.open({ policy: fx.policy, approvalCaps: { perCaller: 2 } });
    const a = await host.call("noop", { n: 1, note: "ssn 123-45-6789" }, { caller: { id: "mallory" } });
    const b = await host.call("noop", { n: 2 }, { caller: { id: "mallory" } });
    expect([a, b].map((r) => !r.ok && r.error.code)).toEqual(["E_APPROVAL_REQUIRED", "E_APPROVAL_REQUIRED"]);
    const c = await host.call("noop", { n: 3 }, { caller: { id: "mallory" } });
    expect(!c.ok && c.error).toMatchObject({ code: "E_RATE_LIMITED", details: { reason: "approvals-pending-per-caller", pending: 2, max: 2, rule: "all" } });
    expect(!c.ok && c.error.message).toMatch(/already has 2 approval requests pending \(at most 2\)/);
    // Another caller is not held back by mallory's requests.
    expect((await host.call("noop", { n: 3 }, { caller: { id: "bob" } })).ok).toBe(false);
    expect((await host.approvals()).filter((x) => x.caller === "bob")).toHaveLength(1);
    const stored = (await host.approvals()).find((x) => x.caller === "mallory" && (x.input as { n: number }).n === 1);
    expect(stored?.input).toEqual({ n: 1, note: "ssn [redacted:no-ssn]" });
    await host.close();
    host = undefined;
    const list = cli(fx, "approvals", "list", "--workspace", fx.workspace);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/\[redacted:no-ssn\]/);
    expect(list.stdout + JSON.stringify(cli(fx, "approvals", "list", "--json", "--workspace", fx.workspace).stdout)).not.toMatch(/123-45-6789/);
  });

  it("a state store that fails refuses the calls its rules cover (fail closed), never throws, and logs why", async () => {
    const fx = setup("version: rl\nrateLimits:\n  - { match: { caller: limited }, per: caller, limit: 10/min }\n");
    const broken = new MemoryStateStore();
    broken.takeToken = async () => {
      throw new Error("connection refused");
    };
    host = await fx.open({ policy: fx.policy, state: broken });
    const r = await host.call("noop", {}, { caller: { id: "limited" } });
    expect(!r.ok && r.error).toMatchObject({ code: "E_RATE_LIMITED", details: { reason: "state-unavailable", rule: "rateLimits[0]" } });
    // Calls no stateful rule covers never touch the store.
    expect((await host.call("noop", {}, { caller: { id: "other" } })).ok).toBe(true);
    const events = await fx.events();
    expect(events.find((e) => e["event"] === "state.error")).toMatchObject({ stage: "rateLimits[0]", message: "connection refused" });
  });
});
