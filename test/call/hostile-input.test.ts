import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { MemoryStateStore } from "../../dist/src/state/memory.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

// One hostile caller or skill per case: each must end as a CallResult with its call.end, and the
// host must answer the next call. The bound is generous for a loaded 2-core machine.
const NEXT_CALL_MS = 10_000;

let host: SkillHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: "x" };
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

async function nextCallServed(h: SkillHost, name: string, input: unknown, caller: object): Promise<void> {
  const started = performance.now();
  const r = await h.call(name, input, { caller } as never);
  expect(r.ok).toBe(true);
  expect(performance.now() - started).toBeLessThan(NEXT_CALL_MS);
}

const ECHO = { "index.js": "export default async (i) => ({ echo: i.text ?? null });" };

describe("input nested far past the depth cap", () => {
  it("with a content filter and an approval rule: E_INPUT_INVALID, logged, host keeps serving", async () => {
    const fx: Fixture = fixture();
    writeSkill(fx.skills, "echo", 'permissions: { files: [{ path: "${workspace}/**", access: [delete] }] }\n', ECHO);
    const policy = join(fx.root, "policy.yaml");
    writeFileSync(policy, "version: 1\nfilters:\n  presets: [cloud-keys]\napprovals:\n  - { name: deletes, match: { access: delete }, expiresIn: 24h, mode: single-use }\n");
    host = await fx.open({ policy, stateDir: join(fx.root, "state") });
    const caller = { id: "mallory", trust: "trusted" };
    for (const levels of [65, 3500, 20_000]) {
      const r = await host.call("echo", nested(levels), { caller } as never);
      expect(!r.ok && r.error.code).toBe("E_INPUT_INVALID");
      expect(!r.ok && r.error.message).toMatch(/deeper than 64/);
    }
    // 63 levels of nesting plus the input object itself: at the cap, accepted (the approval rule asks).
    const atCap = await host.call("echo", nested(62), { caller } as never);
    expect(!atCap.ok && atCap.error.code).toBe("E_APPROVAL_REQUIRED");
    const events = await fx.events();
    expect(events.filter((e) => e["event"] === "call.end").map((e) => e["code"])).toEqual(["E_INPUT_INVALID", "E_INPUT_INVALID", "E_INPUT_INVALID", "E_APPROVAL_REQUIRED"]);
  });
});

describe("a skill returning deeply nested output", () => {
  it("with an output filter: E_OUTPUT_INVALID, not a crash; the next call is served", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "deep", "", { "index.js": "export default async (i) => { let v = {}; for (let n = 0; n < i.levels; n++) v = { a: v }; return v; };" });
    writeSkill(fx.skills, "echo", "", ECHO);
    const policy = join(fx.root, "policy.yaml");
    writeFileSync(policy, 'version: 1\nfilters:\n  rules:\n    - { name: mask, pattern: "/secret/i", on: [output], action: redact }\n');
    host = await fx.open({ policy });
    const r = await host.call("deep", { levels: 5000 });
    expect(!r.ok && r.error.code).toBe("E_OUTPUT_INVALID");
    expect(!r.ok && r.error.message).toMatch(/deeper than 64/);
    expect((await host.call("deep", { levels: 10 })).ok).toBe(true);
    await nextCallServed(host, "echo", { text: "hi" }, {});
  });
});

describe("a skill failing its own hostile output pattern", () => {
  it("E_OUTPUT_INVALID, judged in linear time; the next call is served", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "selfredos", 'output:\n  type: object\n  properties:\n    s: { type: string, pattern: "^(a+)+$" }\n', {
      "index.js": 'export default async (i) => ({ s: "a".repeat(i.n) + "!" });',
    });
    writeSkill(fx.skills, "echo", "", ECHO);
    host = await fx.open();
    const started = performance.now();
    const r = await host.call("selfredos", { n: 100_000 });
    expect(!r.ok && r.error.code).toBe("E_OUTPUT_INVALID");
    expect(performance.now() - started).toBeLessThan(NEXT_CALL_MS);
    await nextCallServed(host, "echo", { text: "hi" }, {});
  });
});

describe("authorize before validating", () => {
  it("a caller who may not run the skill gets E_PERMISSION_DENIED; its input is never validated", async () => {
    const fx = fixture();
    writeSkill(
      fx.skills,
      "reader",
      `permissions: { files: [{ path: "\${workspace}/**", access: [read] }] }\ninput:\n  type: object\n  required: [q]\n  properties:\n    q: { type: string, pattern: "^(a+)+$" }\n`,
      ECHO,
    );
    host = await fx.open();
    const r = await host.call("reader", { q: 42, extra: nested(5000) }, { caller: { trust: "untrusted" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    const invalid = await host.call("reader", { q: 42 }, { caller: { trust: "trusted" } });
    expect(!invalid.ok && invalid.error.code).toBe("E_INPUT_INVALID");
  });
});

describe("faults inside the host end as CallResults", () => {
  it("a TMPDIR that cannot be written: E_SKILL_ERROR with call.end; the host keeps serving", async () => {
    const fx = fixture();
    // A grant in ${tmp}: the call needs its own temporary folder before any attempt.
    writeSkill(fx.skills, "runner", 'permissions: { files: [{ path: "${tmp}/**", access: [read, write] }] }\n', ECHO);
    writeSkill(fx.skills, "echo", "", ECHO);
    host = await fx.open();
    const saved = process.env["TMPDIR"];
    const blocked = join(fx.root, "not-a-dir");
    writeFileSync(blocked, "a file where a folder should be");
    process.env["TMPDIR"] = blocked;
    let r;
    try {
      r = await host.call("runner", {}, { caller: { trust: "system" } });
    } finally {
      if (saved === undefined) delete process.env["TMPDIR"];
      else process.env["TMPDIR"] = saved;
    }
    expect(!r.ok && r.error).toMatchObject({ code: "E_SKILL_ERROR", message: expect.stringMatching(/temporary folder/) });
    await nextCallServed(host, "echo", { text: "hi" }, {});
    const ends = (await fx.events()).filter((e) => e["event"] === "call.end");
    expect(ends.map((e) => e["code"] ?? null)).toEqual(["E_SKILL_ERROR", null]);
  });

  it("a state store that fails mid-call: the call ends with a CallResult (refused, fail closed) and call.end, not a rejection", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "cleanup", 'permissions: { files: [{ path: "${workspace}/**", access: [delete] }] }\n', ECHO);
    writeSkill(fx.skills, "echo", "", ECHO);
    const policy = join(fx.root, "policy.yaml");
    writeFileSync(policy, "version: 1\napprovals:\n  - { name: deletes, match: { access: delete }, expiresIn: 24h, mode: single-use }\n");
    const store = new MemoryStateStore();
    store.checkApproval = async () => {
      throw new Error("disk I/O error");
    };
    host = await fx.open({ policy, state: store });
    const r = await host.call("cleanup", { text: "x" }, { caller: { id: "alice", trust: "trusted" } });
    expect(!r.ok && r.error).toMatchObject({
      code: "E_RATE_LIMITED",
      retryable: false,
      details: { reason: "state-unavailable", rule: "deletes" },
      message: expect.stringMatching(/could not be reached.*disk I\/O error/),
    });
    await nextCallServed(host, "echo", { text: "hi" }, {});
    const ends = (await fx.events()).filter((e) => e["event"] === "call.end");
    expect(ends).toHaveLength(2);
  });

  it("a corrupt approvals.json left by an older version does not stop the host: it is reported and left in place", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "echo", "", ECHO);
    const state = join(fx.root, "state");
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, "approvals.json"), "{ not json");
    const warnings: string[] = [];
    host = await fx.open({ stateDir: state, onWarning: (m) => warnings.push(m) });
    expect(warnings.join("\n")).toMatch(/could not import .*approvals\.json/);
    await nextCallServed(host, "echo", { text: "hi" }, {});
  });
});
