import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { cli as runCli, fixture, type Fixture, readEvents, waitFor, writeSkill } from "../helpers.js";

let host: SkillHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

function withPolicy(fx: Fixture, text: string): string {
  const file = join(fx.root, "policy.yaml");
  writeFileSync(file, text);
  return file;
}
const cli = (fx: Fixture, ...args: string[]) => runCli(args, fx.root);
const ECHO = { "index.js": "export default async (i) => ({ echo: i.text ?? null });" };

describe("policy engine through host.call", () => {
  it("rate limits: E_RATE_LIMITED with retryAfterMs, per caller, logged with the rule and policy version", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "echo", "", ECHO);
    let now = Date.parse("2026-11-23T10:00:00Z");
    host = await fx.open({ policy: withPolicy(fx, "version: rl-1\nrateLimits:\n  - { match: { trust: untrusted }, per: caller, limit: 2/min, burst: 1 }\n"), clock: () => now });
    expect((await host.call("echo", {}, { caller: { id: "a" } })).ok).toBe(true);
    const r = await host.call("echo", {}, { caller: { id: "a" } });
    expect(!r.ok && r.error).toMatchObject({ code: "E_RATE_LIMITED", details: { retryAfterMs: 30_000, rule: "rateLimits[0]" } });
    expect((await host.call("echo", {}, { caller: { id: "b" } })).ok).toBe(true);
    expect((await host.call("echo", {}, { caller: { id: "a", trust: "user-verified" } })).ok).toBe(true); // rule matches untrusted only
    now += 30_000;
    expect((await host.call("echo", {}, { caller: { id: "a" } })).ok).toBe(true);
    const denied = (await fx.events()).find((e) => e["event"] === "call.denied" && e["callId"] === r.callId);
    expect(denied).toMatchObject({ code: "E_RATE_LIMITED", rule: "rateLimits[0]", policyVersion: expect.stringMatching(/^rl-1@/) });
  });

  it("time windows: outside the window is E_PERMISSION_DENIED naming it", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "deploy", "", ECHO);
    let now = Date.parse("2026-11-28T10:00:00Z"); // a Saturday
    host = await fx.open({
      policy: withPolicy(fx, 'version: 1\nwindows:\n  - { name: office-hours, match: { skill: deploy }, allow: { days: [mon, tue, wed, thu, fri], hours: "09:00-18:00", tz: Europe/Berlin } }\n'),
      clock: () => now,
    });
    const r = await host.call("deploy", {});
    expect(!r.ok && r.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { rule: "windows[0]", window: "office-hours" } });
    expect(!r.ok && r.error.message).toMatch(/office-hours/);
    now = Date.parse("2026-11-27T10:00:00Z");
    expect((await host.call("deploy", {})).ok).toBe(true);
  });

  it("filters: a blocked input never runs and is not echoed; output is redacted; a fetch body is blocked", async () => {
    const fx = fixture();
    let hits = 0;
    const server = createServer((_q, s) => {
      hits++;
      s.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    writeSkill(fx.skills, "echo", "", ECHO);
    writeSkill(fx.skills, "poster", `permissions: { network: [{ host: "127.0.0.1", scheme: http }] }\n`, {
      "index.js": `export default async (i, ctx) => (await ctx.fetch("http://127.0.0.1:${port}/", { method: "POST", body: i.text })).text;`,
    });
    const policy = withPolicy(
      fx,
      `version: 1\ntrust:\n  trusted: { network: [{ host: "127.0.0.1", scheme: http }] }\nfilters:\n  presets: [cloud-keys]\n  rules:\n    - { name: no-ssn, pattern: "/\\\\b\\\\d{3}-\\\\d{2}-\\\\d{4}\\\\b/", on: [output], action: redact }\n    - { name: no-secret-posts, terms: [TOP SECRET], on: [request], action: block }\n`,
    );
    host = await fx.open({ policy });
    const blocked = await host.call("echo", { text: "my key is AKIAIOSFODNN7EXAMPLE" });
    expect(!blocked.ok && blocked.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { filter: "cloud-keys" } });
    expect(blocked.attempts).toBe(0);
    expect(JSON.stringify(blocked)).not.toMatch(/AKIAIOSFODNN7EXAMPLE/);
    const redacted = await host.call("echo", { text: "ssn 123-45-6789" });
    expect(redacted.ok && redacted.output).toEqual({ echo: "ssn [redacted:no-ssn]" });
    const post = await host.call("poster", { text: "this is top secret" }, { caller: { id: "t", trust: "trusted" } });
    expect(!post.ok && post.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { rule: "filters.no-secret-posts" } });
    expect(hits).toBe(0);
    const log = readFileSync(fx.auditFile, "utf8");
    expect(log).not.toMatch(/AKIAIOSFODNN7EXAMPLE|123-45-6789/);
    expect((await fx.events()).filter((e) => e["event"] === "filter.match").map((e) => `${e["filter"]}:${e["stage"]}:${e["action"]}`)).toEqual([
      "cloud-keys:input:block",
      "no-ssn:output:redact",
      "no-secret-posts:request:block",
    ]);
    server.close();
  });

  it("concurrency per caller: E_RATE_LIMITED while the caller has too many calls in flight", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "slow", "", { "index.js": "export default async () => { const t = Date.now(); while (Date.now() - t < 200) {} return 1; };" });
    host = await fx.open({ policy: withPolicy(fx, "version: 1\nconcurrency: { perCaller: 1 }\n") });
    const [a, b, c] = await Promise.all([host.call("slow", {}, { caller: { id: "x" } }), host.call("slow", {}, { caller: { id: "x" } }), host.call("slow", {}, { caller: { id: "y" } })]);
    expect(a.ok).toBe(true);
    expect(!b.ok && b.error).toMatchObject({ code: "E_RATE_LIMITED", details: { rule: "concurrency.perCaller" } });
    expect(c.ok).toBe(true);
    expect((await host.call("slow", {}, { caller: { id: "x" } })).ok).toBe(true);
  });

  it("approvals: E_APPROVAL_REQUIRED, approved from the CLI, runs once, then asks again", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "cleanup", 'permissions: { files: [{ path: "${workspace}/**", access: [delete] }] }\n', ECHO);
    const policy = withPolicy(fx, "version: 1\napprovals:\n  - { name: deletes, match: { access: delete }, expiresIn: 24h, mode: single-use }\n");
    host = await fx.open({ policy, stateDir: join(fx.root, "state") });
    const caller = { caller: { id: "alice", trust: "trusted" } } as const;
    const first = await host.call("cleanup", { text: "old logs" }, caller);
    expect(!first.ok && first.error.code).toBe("E_APPROVAL_REQUIRED");
    const id = (!first.ok && (first.error.details as { approvalId: string }).approvalId) as string;
    expect(id).toMatch(/^apr_/);
    // The same call again is the same pending request.
    const again = await host.call("cleanup", { text: "old logs" }, caller);
    expect(!again.ok && (again.error.details as { approvalId: string }).approvalId).toBe(id);
    const approve = await cli(fx, "approvals", "approve", id, "--reason", "ok by ops", "--state", join(fx.root, "state"), "--audit", fx.auditFile);
    expect(approve.status).toBe(0);
    expect(approve.stdout).toMatch(/approved apr_/);
    // Another input is not covered.
    expect((await host.call("cleanup", { text: "other" }, caller)).ok).toBe(false);
    const run = await host.call("cleanup", { text: "old logs" }, caller);
    expect(run.ok && run.output).toEqual({ echo: "old logs" });
    const afterUse = await host.call("cleanup", { text: "old logs" }, caller);
    expect(!afterUse.ok && afterUse.error.code).toBe("E_APPROVAL_REQUIRED");
    const list = JSON.parse((await cli(fx, "approvals", "list", "--json", "--state", join(fx.root, "state"))).stdout) as { id: string; status: string }[];
    expect(list.find((a) => a.id === id)?.status).toBe("used");
    expect((await cli(fx, "approvals", "approve", id, "--state", join(fx.root, "state"))).status).toBe(2);
    const events = readEvents(fx.auditFile);
    expect(events.find((e) => e["event"] === "approval.decided")).toMatchObject({ approvalId: id, decision: "approved", reason: "ok by ops" });
    expect(events.find((e) => e["event"] === "approval.used")).toMatchObject({ approvalId: id });
  });

  it("signed skills: unsigned or tampered is E_INTEGRITY where the policy requires signatures", async () => {
    const fx = fixture();
    const dir = writeSkill(fx.skills, "signed", "", ECHO);
    writeSkill(fx.skills, "unsigned", "", ECHO);
    const keygen = await cli(fx, "keygen", join(fx.root, "release.pem"));
    const pub = /release: "([^"]+)"/.exec(keygen.stdout)![1]!;
    expect((await cli(fx, "sign", dir, "--key", join(fx.root, "release.pem"), "--key-id", "release")).status).toBe(0);
    const policy = withPolicy(fx, `version: 1\nsigning:\n  require: [untrusted]\n  keys: { release: "${pub}" }\n`);
    host = await fx.open({ policy });
    expect((await host.call("signed", { text: "hi" })).ok).toBe(true);
    const u = await host.call("unsigned", {});
    expect(!u.ok && u.error).toMatchObject({ code: "E_INTEGRITY", details: { rule: "signing" } });
    expect((await host.call("unsigned", {}, { caller: { id: "t", trust: "trusted" } })).ok).toBe(true); // not required there
    expect((host.tools("mcp") as { name: string }[]).map((t) => t.name)).toEqual(["signed"]);
    await host.close();
    writeFileSync(join(dir, "index.js"), "export default async () => 'tampered';");
    host = await fx.open({ policy });
    const t = await host.call("signed", {});
    expect(!t.ok && t.error.code).toBe("E_INTEGRITY");
    expect(!t.ok && t.error.message).toMatch(/changed since it was signed: index\.js/);
  });

  it("self-tests: a policy whose expect cases fail is refused at load; skillbox policy test says which", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "read-notes", 'permissions: { files: [{ path: "${workspace}/notes/**", access: [read] }] }\n', ECHO);
    const good = withPolicy(
      fx,
      'version: 1\nexpect:\n  - { skill: read-notes, trust: user-verified, need: { files: "${workspace}/notes/a.md", access: read }, decision: allow }\n  - { skill: read-notes, trust: untrusted, need: { files: "${workspace}/notes/a.md", access: read }, decision: deny }\n',
    );
    host = await fx.open({ policy: good });
    await host.close();
    host = undefined;
    const t = await cli(fx, "policy", "test", good, "--skills", fx.skills, "--workspace", fx.workspace);
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/2 passed, 0 failed/);
    // An edit that widens access by accident: untrusted may now read the workspace.
    const widened = withPolicy(fx, readFileSync(good, "utf8") + 'trust:\n  untrusted: { files: [{ path: "${workspace}/**", access: [read] }] }\n');
    await expect(fx.open({ policy: widened })).rejects.toMatchObject({ code: "E_POLICY_INVALID", message: expect.stringMatching(/expect\[1\].*expected deny, got allow/) });
    const bad = await cli(fx, "policy", "test", widened, "--skills", fx.skills, "--workspace", fx.workspace);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toMatch(/✖ expect\[1\]/);
  });

  it("hot reload: a valid change goes live for new calls, calls in flight finish under their version; an invalid one is refused", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "slow", "", { "index.js": "export default async () => { const t = Date.now(); while (Date.now() - t < 400) {} return 'done'; };" });
    const file = withPolicy(fx, "version: v1\n");
    const warnings: string[] = [];
    const h = await fx.open({ policy: file, stateDir: join(fx.root, "state"), onWarning: (m) => warnings.push(m) });
    host = h;
    const changes: string[] = [];
    const stop = host.watch((what) => changes.push(what), 50);
    const inFlight = host.call("slow", {});
    await waitFor("the first call to be running", () => h.sandboxStats().inflight >= 1);
    writeFileSync(file, "version: v2\nrateLimits: [{ limit: 1/hour }]\n");
    await waitFor("the policy change to be seen", () => changes.includes("policy"));
    expect(host.policy.version).toMatch(/^v2@/);
    const first = await inFlight;
    expect(first.ok).toBe(true);
    const ends = (await fx.events()).filter((e) => e["event"] === "call.end");
    expect(ends.find((e) => e["callId"] === first.callId)?.["policyVersion"]).toMatch(/^v1@/);
    expect((await host.call("slow", {})).ok).toBe(true);
    const limited = await host.call("slow", {});
    expect(!limited.ok && limited.error.code).toBe("E_RATE_LIMITED");
    writeFileSync(file, "version: v3\nrateLimits: [{ limit: lots }]\n");
    await waitFor("the invalid policy to be reported", () => warnings.length > 0);
    expect(warnings.join("\n")).toMatch(/was not loaded; v2@\w+ stays in force/);
    expect(host.policy.version).toMatch(/^v2@/);
    stop();
    expect((await fx.events()).filter((e) => e["event"] === "policy.reload").map((e) => e["outcome"])).toEqual(["ok", "error"]);
    // Both versions were kept: policy diff names the widening between them.
    const diff = await cli(fx, "policy", "diff", "v1", "v2", "--state", join(fx.root, "state"));
    expect(diff.stdout).toMatch(/narrowed\s+\+ rateLimits/);
  });
});

describe("self-tests about skills that are not registered", () => {
  it("are skipped and reported, not counted as failures", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "echo", "", ECHO);
    const policy = withPolicy(fx, 'version: 1\nexpect:\n  - { skill: elsewhere, trust: untrusted, need: { files: "${workspace}/a", access: read }, decision: deny }\n');
    const warnings: string[] = [];
    host = await fx.open({ policy, onWarning: (m) => warnings.push(m) });
    expect((await host.call("echo", {})).ok).toBe(true);
    expect(warnings.join("\n")).toMatch(/1 self-test case\(s\) skipped: expect\[0\] \(skill "elsewhere" is not registered\)/);
    const t = await cli(fx, "policy", "test", policy, "--skills", fx.skills);
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/○ expect\[0\].*skipped/);
    expect(t.stdout).toMatch(/0 passed, 0 failed, 1 skipped/);
  });
});
