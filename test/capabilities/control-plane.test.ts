import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillHost } from "../../dist/src/index.js";
import { readEvents, tempDir, writeSkill } from "../helpers.js";

/**
 * A hostile skill under the most generous ceilings (trusted: all access to the workspace; system)
 * tries to rewrite the rules, the other skills, the git hooks and the record of what it did.
 */
const FS_PROBE = `export default async function (input, ctx) {
  if (input.op === "write") await ctx.fs.writeFile(input.path, "pwned");
  else if (input.op === "delete") await ctx.fs.delete(input.path);
  else if (input.op === "list") return await ctx.fs.list(input.path);
  else return await ctx.fs.readFile(input.path);
  return "done";
}`;

describe("the control plane is out of every skill's reach", () => {
  let root: string;
  let ws: string;
  let host: SkillHost;
  const audit = () => join(ws, "logs", "audit.jsonl");
  const policyText = "version: 1\n";
  beforeAll(async () => {
    root = tempDir();
    ws = join(root, "ws");
    mkdirSync(join(ws, "skills"), { recursive: true });
    mkdirSync(join(ws, ".git", "hooks"), { recursive: true });
    mkdirSync(join(ws, "logs"));
    mkdirSync(join(ws, "notes"));
    writeFileSync(join(ws, "skillbox.policy.yaml"), policyText);
    writeFileSync(join(ws, ".git", "hooks", "pre-commit"), "#!/bin/sh\nexit 0\n");
    writeFileSync(join(ws, "notes", "a.md"), "hello");
    symlinkSync(join(ws, "skillbox.policy.yaml"), join(ws, "notes", "policy-link"));
    const all = `permissions:\n  files:\n    - { path: "\${workspace}/**", access: [read, write, create, delete, list] }\n`;
    writeSkill(join(ws, "skills"), "greedy", all, { "index.js": FS_PROBE });
    writeSkill(join(ws, "skills"), "victim", "", { "index.js": "export default async () => 'victim';" });
    host = await SkillHost.open({ skillsDir: join(ws, "skills"), workspace: ws, audit: audit(), stateDir: join(ws, "state"), workers: 1, onWarning: () => undefined });
    // a first call makes the log file exist; the state folder exists from the policy snapshot
    await host.call("victim", {}, { caller: { id: "t", trust: "system" } });
  });
  afterAll(async () => {
    await host.close();
  });

  it("loads a manifest whose grant would cover the control plane (the paths are cut out, not the skill)", () => {
    expect(host.authorize("greedy", "trusted").ok).toBe(true);
  });

  const targets: [string, string, (ws: string) => string][] = [
    ["write", "the policy file in force", (w) => join(w, "skillbox.policy.yaml")],
    ["write", "the policy file through a symlink", (w) => join(w, "notes", "policy-link")],
    ["write", "another skill's index.js", (w) => join(w, "skills", "victim", "index.js")],
    ["write", "its own index.js", (w) => join(w, "skills", "greedy", "index.js")],
    ["write", "a new file in the skills folder", (w) => join(w, "skills", "new", "skill.yaml")],
    ["write", "an executable git hook", (w) => join(w, ".git", "hooks", "pre-commit")],
    ["write", "a new git hook", (w) => join(w, ".git", "hooks", "post-checkout")],
    ["write", "the security log", (w) => join(w, "logs", "audit.jsonl")],
    ["write", "the security log's lock", (w) => join(w, "logs", "audit.jsonl.lock")],
    ["write", "an approval in the state folder", (w) => join(w, "state", "approvals.json")],
    ["delete", "the policy file", (w) => join(w, "skillbox.policy.yaml")],
    ["delete", "the security log", (w) => join(w, "logs", "audit.jsonl")],
    ["read", "the security log", (w) => join(w, "logs", "audit.jsonl")],
    ["list", "the state folder", (w) => join(w, "state")],
  ];

  it.each(targets)("refuses to %s %s, at trust level trusted and system", async (op, _what, path) => {
    for (const trust of ["trusted", "system"]) {
      const r = await host.call("greedy", { op, path: path(ws) }, { caller: { id: "attacker", trust } });
      expect(r.ok ? "ok" : `${r.error.code}: ${r.error.message}`).toMatch(/^E_PERMISSION_DENIED: .*rule: control-plane/);
    }
  });

  it("leaves every target as it was and logs each refusal with the rule control-plane", async () => {
    expect(readFileSync(join(ws, "skillbox.policy.yaml"), "utf8")).toBe(policyText);
    expect(readFileSync(join(ws, ".git", "hooks", "pre-commit"), "utf8")).toMatch(/^#!\/bin\/sh/);
    expect(readFileSync(join(ws, "skills", "victim", "index.js"), "utf8")).toMatch(/victim/);
    expect(existsSync(join(ws, "skills", "new"))).toBe(false);
    expect(existsSync(join(ws, ".git", "hooks", "post-checkout"))).toBe(false);
    expect(existsSync(join(ws, "state", "approvals.json"))).toBe(false);
    await host.audit.flush();
    const denials = readEvents(audit()).filter((e) => e["event"] === "capability" && e["decision"] === "deny");
    expect(denials.length).toBeGreaterThanOrEqual(targets.length * 2);
    for (const d of denials) expect(d["rule"]).toBe("control-plane");
    const v = await host.call("victim", {}, { caller: { id: "t", trust: "system" } });
    expect(v.ok && v.output).toBe("victim");
  });

  it("still lets the skill use the rest of its grant", async () => {
    const w = await host.call("greedy", { op: "write", path: join(ws, "notes", "b.md") }, { caller: { id: "t", trust: "trusted" } });
    expect(w.ok).toBe(true);
    const r = await host.call("greedy", { op: "read", path: join(ws, "skillbox.policy.yaml") }, { caller: { id: "t", trust: "trusted" } });
    expect(r.ok && r.output).toBe(policyText); // the policy is readable, only never writable
  });
});
