import { mkdirSync, symlinkSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

// One skill that does whatever file operation the input asks for, declared on ${workspace}/data/**.
const PROBE = `
export default async function (input, ctx) {
  const path = input.path.replace("$WS", ctx.env.workspace);
  let caught = null;
  try {
    if (input.op === "read") return { value: await ctx.fs.readFile(path) };
    if (input.op === "write") return { value: await ctx.fs.writeFile(path, "x") };
    if (input.op === "list") return { value: await ctx.fs.list(path) };
    if (input.op === "delete") return { value: await ctx.fs.delete(path) };
  } catch (err) {
    caught = String(err.message);
    if (input.swallow) return { swallowed: caught };
    throw err;
  }
}`;

describe("file capability: attacks are refused with E_PERMISSION_DENIED", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    mkdirSync(join(fx.workspace, "data"));
    mkdirSync(join(fx.workspace, "data-evil"));
    writeFileSync(join(fx.workspace, "data", "ok.txt"), "fine");
    writeFileSync(join(fx.workspace, "data", ".env"), "SECRET=1");
    writeFileSync(join(fx.workspace, "data-evil", "loot.txt"), "loot");
    writeFileSync(join(fx.workspace, "outside.txt"), "outside");
    symlinkSync("/etc/passwd", join(fx.workspace, "data", "passwd-link"));
    symlinkSync(join(fx.workspace, "data-evil"), join(fx.workspace, "data", "evil-dir"));
    symlinkSync("/nonexistent-target", join(fx.workspace, "data", "dangling"));
    writeSkill(
      fx.skills,
      "probe",
      `permissions:\n  files:\n    - { path: "\${workspace}/data/**", access: [read, list, write, create, delete] }\nretry: { attempts: 3, initialDelayMs: 1 }\nfallback: { skill: other }\n`,
      { "index.js": PROBE },
    );
    writeSkill(fx.skills, "other", "", { "index.js": "export default async () => 'fallback ran';" });
    host = await fx.open();
  });
  afterAll(async () => host.close());

  const call = (input: Record<string, unknown>) => host.call("probe", input, { caller: { id: "t", trust: "trusted" } });

  it("allows what is declared", async () => {
    const r = await call({ op: "read", path: "$WS/data/ok.txt" });
    expect(r.ok && r.output).toEqual({ value: "fine" });
  });

  it.each([
    ["'..' out of the allowed tree", "read", "$WS/data/../outside.txt", "manifest"],
    ["an absolute path elsewhere", "read", "/etc/passwd", "manifest"],
    ["a symlink out of the allowed tree", "read", "$WS/data/passwd-link", "manifest"],
    ["a symlinked folder out of the tree", "read", "$WS/data/evil-dir/loot.txt", "manifest"],
    ["a sibling-prefix folder (data-evil vs data)", "read", "$WS/data-evil/loot.txt", "manifest"],
    ["a NUL byte", "read", "$WS/data/ok.txt\u0000.png", "path"],
    ["a deny rule inside the grant (.env)", "read", "$WS/data/.env", "deny:**/.env"],
    ["a write through a symlinked folder", "write", "$WS/data/evil-dir/new.txt", "manifest"],
    ["creating through '..'", "write", "$WS/data/../new.txt", "manifest"],
    ["deleting outside", "delete", "$WS/outside.txt", "manifest"],
    ["listing the workspace root", "list", "$WS", "manifest"],
    ["a relative path climbing out", "read", "../../../../etc/passwd", "manifest"],
  ])("%s", async (_what, op, path, rule) => {
    const before = (await fx.events()).length;
    const r = await call({ op, path, swallow: true });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    // Even a skill that catches the error cannot go on: the call ends refused, not retried, no fallback.
    expect(r.error.code).toBe("E_PERMISSION_DENIED");
    expect(r.attempts).toBe(1);
    expect(r.fallback).toBeNull();
    expect((r.error.details as { rule: string }).rule).toBe(rule);
    const denial = (await fx.events()).slice(before).find((e) => e["event"] === "capability" && e["decision"] === "deny");
    expect(denial).toMatchObject({ op: `fs.${op === "write" ? "writeFile" : op === "read" ? "readFile" : op}`, rule, skill: "probe", caller: "t" });
    expect(String(denial?.["target"]).length).toBeGreaterThan(0);
  });

  it("nothing was written or deleted by the refused calls", () => {
    expect(existsSync(join(fx.workspace, "new.txt"))).toBe(false);
    expect(existsSync(join(fx.workspace, "data-evil", "new.txt"))).toBe(false);
    expect(readFileSync(join(fx.workspace, "outside.txt"), "utf8")).toBe("outside");
  });

  it("a dangling symlink inside the tree is not written through", async () => {
    const r = await call({ op: "write", path: "$WS/data/dangling", swallow: true });
    expect(r.ok && r.output).toMatchObject({ swallowed: expect.stringMatching(/symbolic link|already exists/) });
    expect(existsSync("/nonexistent-target")).toBe(false);
  });

  it("an ordinary failure (missing file) is the skill's to handle, not a denial", async () => {
    const r = await call({ op: "read", path: "$WS/data/missing.txt", swallow: true });
    expect(r.ok && r.output).toEqual({ swallowed: expect.stringMatching(/no such file/) });
  });
});
