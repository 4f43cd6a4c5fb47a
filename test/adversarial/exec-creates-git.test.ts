import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

/**
 * Red team: a confined process that may write a folder can create a NEW `.git` there (bwrap cannot
 * forbid creating names): a hook, or a config with core.fsmonitor, runs outside any sandbox on the
 * user's next git command. After the process is gone, the host removes every control-plane entry it
 * created in the folders it could write, logs each as a denial, and the attempt ends denied.
 */
const PLANT = `export default async function (input, ctx) {
  const r = await ctx.exec("sh", ["-c", input.script]);
  return r.stdout;
}`;

const SCRIPT = (ws: string) =>
  [
    `cd ${ws}/sub`,
    "mkdir -p .git/hooks x/.git deep/a/b",
    "printf '#!/bin/sh\\ntouch PWNED\\n' > .git/hooks/pre-commit",
    "printf '[core]\\n\\tfsmonitor = touch PWNED\\n' > x/.git/config",
    "printf 'gitdir: ../../x/.git\\n' > deep/a/b/.git",
    "ln -s /nonexistent-target y && mv y deep/.git",
    "echo ordinary > ok.txt",
    "echo planted",
  ].join("; ");

for (const sandbox of ["required", "off"] as const) {
  describe(`a process cannot leave a new .git behind (sandbox: ${sandbox})`, () => {
    let fx: Fixture;
    let host: SkillHost;
    beforeAll(async () => {
      fx = fixture();
      const ws = fx.workspace;
      // a repository that was there before the run is the user's: it stays
      mkdirSync(join(ws, "sub", "keep", ".git"), { recursive: true });
      writeFileSync(join(ws, "sub", "keep", ".git", "HEAD"), "ref: refs/heads/main\n");
      const files = `    files:\n      - { path: "\${workspace}/sub/**", access: [read, write, create, delete, list] }\n`;
      const process = `    process:\n      - { command: sh, args: ["-c", "/^[^]*$/"] }\n`;
      writeFileSync(join(fx.root, "policy.yaml"), `version: 1\nprocess: { sandbox: "${sandbox}" }\ntrust:\n  trusted:\n${files}${process}`);
      writeSkill(fx.skills, "planter", `permissions:\n${files.replace(/^ {2}/gm, "")}${process.replace(/^ {2}/gm, "")}`, { "index.js": PLANT });
      host = await fx.open({ policy: join(fx.root, "policy.yaml") });
    });
    afterAll(async () => host.close());

    it("removes the created .git entries, keeps the rest, and ends the call E_PERMISSION_DENIED (rule control-plane)", async () => {
      const ws = fx.workspace;
      const r = await host.call("planter", { script: SCRIPT(ws) }, { caller: { id: "rt", trust: "trusted" } });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe("E_PERMISSION_DENIED");
      expect((r.error.details as { rule?: string }).rule).toBe("control-plane");

      expect(existsSync(join(ws, "sub", ".git"))).toBe(false);
      expect(existsSync(join(ws, "sub", "x", ".git"))).toBe(false);
      expect(existsSync(join(ws, "sub", "deep", "a", "b", ".git"))).toBe(false);
      expect(() => readFileSync(join(ws, "sub", "deep", ".git"))).toThrow(); // the symlink itself is gone
      expect(existsSync(join(ws, "sub", "x"))).toBe(true);
      expect(readFileSync(join(ws, "sub", "ok.txt"), "utf8")).toBe("ordinary\n");
      expect(readFileSync(join(ws, "sub", "keep", ".git", "HEAD"), "utf8")).toBe("ref: refs/heads/main\n");

      const events = await fx.events();
      const exec = events.find((e) => e["event"] === "process.exec" && e["decision"] === "allow");
      expect(exec?.["sandbox"]).toBe(sandbox === "off" ? "none" : "bwrap");
      const created = events.filter((e) => e["event"] === "capability" && e["op"] === "exec.created");
      expect(created.map((e) => e["target"]).sort()).toEqual(
        [join(ws, "sub", ".git"), join(ws, "sub", "deep", ".git"), join(ws, "sub", "deep", "a", "b", ".git"), join(ws, "sub", "x", ".git")].sort(),
      );
      for (const e of created) expect(e).toMatchObject({ decision: "deny", rule: "control-plane" });
      expect(events.some((e) => e["event"] === "call.end" && e["code"] === "E_PERMISSION_DENIED")).toBe(true);
    });

    it("an ordinary run in the same folders is not disturbed", async () => {
      const ws = fx.workspace;
      const r = await host.call("planter", { script: `cd ${ws}/sub && mkdir -p notes && echo hi > notes/a.txt && cat notes/a.txt` }, { caller: { id: "rt", trust: "trusted" } });
      expect(r).toMatchObject({ ok: true, output: "hi\n" });
    });
  });
}
