import { describe, expect, it } from "vitest";
import { authorize } from "../../dist/src/policy/authorize.js";
import { parsePolicy } from "../../dist/src/policy/load.js";
import { checkProcess } from "../../dist/src/policy/process.js";
import { validateManifest } from "../../dist/src/manifest/load.js";
import type { ArgPattern } from "../../dist/src/manifest/schema.js";

const vars = { workspace: "/ws", home: "/home/u", skill: "/skills/t" };
const CP = { protect: ["/ws/skillbox.policy.yaml", "/skills"], hide: ["/ws/.skillbox"] };

function grantFor(args: ArgPattern[], network?: boolean) {
  const rule = { command: "cat", args, ...(network !== undefined ? { network } : {}) };
  const policy = parsePolicy(
    `version: 1\ntrust:\n  trusted:\n    files: [ { path: "\${workspace}/**", access: [read, write, create, list] } ]\n    process:\n      - { command: cat, args: ["**", "/^.*$/"] }\n      - { command: cat, args: ["**", { path: "/**", access: [read, write, create, list] }], network: true }\n`,
    "policy.yaml",
  );
  const manifest = validateManifest({ name: "t", version: "1.0.0", description: "t", permissions: { process: [rule] } }, "skill.yaml");
  const r = authorize(manifest, { trust: "trusted", policy, vars, controlPlane: CP });
  if (!r.ok) throw new Error(JSON.stringify(r.needs));
  return r.grant;
}

/** Lexical resolution against /ws (symlinks are the capability's job, tested with real files elsewhere). */
const ctx = {
  tmpDir: "/tmp/call",
  resolvePath: (a: string) => {
    const p = a.startsWith("/") ? a : `/ws/${a}`;
    const n = new URL(`file://${p}`).pathname;
    return { lexical: n, real: n };
  },
};

describe("glob argument patterns", () => {
  it.each<[string, string, boolean]>([
    ["*", "hello", true],
    ["*", "a/b", false],
    ["/etc/*", "/etc/passwd", true],
    ["/etc/*", "/etc/ssl/certs", false],
    ["/etc/*", "/etc/../ws/.env", false],
    ["/etc/**", "/etc/ssl/certs", true],
    ["/etc/**", "/etc/../ws/.env", false],
    ["**", "/etc/../ws/.env", false],
    ["**", "anything/at/all", true],
    ["file?.txt", "file1.txt", true],
    ["file?.txt", "file/.txt", false],
    ["${workspace}/notes/*.md", "/ws/notes/a.md", true],
    ["${workspace}/notes/*.md", "/other/notes/a.md", false],
    ["${workspace}/notes/*.md", "/ws/notes/sub/a.md", false],
    ["-n", "-n", true],
    ["-n", "-nx", false],
    ["/^[0-9]{1,3}$/", "123", true],
    ["/^[0-9]{1,3}$/", "1234", false],
    ["/^.*$/", "/etc/../ws/.env", true], // a regex is taken as written, `..` included
  ])("%s against %s: %s", (pattern, arg, allowed) => {
    expect(checkProcess(grantFor([pattern]), "cat", [arg], ctx).allowed).toBe(allowed);
  });
});

describe("path argument patterns are checked like file accesses", () => {
  const notes: ArgPattern = { path: "${workspace}/notes/**", access: ["read"] };
  it.each<[string, ArgPattern, string, boolean, string?]>([
    ["inside the folder", notes, "/ws/notes/a.md", true],
    ["relative, resolved against the cwd", notes, "notes/a.md", true],
    ["normalized out of the folder", notes, "/ws/notes/../secret.txt", false, "manifest"],
    ["a deny rule inside the folder", notes, "/ws/notes/.env", false, "deny:**/.env"],
    ["an option", notes, "--help", false],
    ["the policy file, for writing", { path: "${workspace}/**", access: ["write"] }, "/ws/skillbox.policy.yaml", false],
    ["the policy file, for reading", { path: "${workspace}/**", access: ["read"] }, "/ws/skillbox.policy.yaml", true],
    ["the state folder, even for reading", { path: "${workspace}/**", access: ["read"] }, "/ws/.skillbox/approvals.json", false],
    ["a git hook, for writing", { path: "${workspace}/**", access: ["write"] }, "/ws/.git/hooks/pre-commit", false],
  ])("%s", (_what, pattern, arg, allowed) => {
    const d = checkProcess(grantFor([pattern]), "cat", [arg], ctx);
    expect(d.allowed).toBe(allowed);
    if (d.allowed) expect(d.paths).toEqual([{ arg, real: ctx.resolvePath(arg).real, access: pattern === notes ? ["read"] : (pattern as { access: string[] }).access }]);
  });

  it("refuses at authorize a path pattern wider than the ceiling's", () => {
    const policy = parsePolicy(`version: 1\ntrust:\n  trusted:\n    process:\n      - { command: cat, args: [{ path: "\${workspace}/notes/**", access: [read] }] }\n`, "policy.yaml");
    const wide = validateManifest(
      { name: "t", version: "1.0.0", description: "t", permissions: { process: [{ command: "cat", args: [{ path: "${workspace}/**", access: ["read"] }] }] } },
      "skill.yaml",
    );
    const narrow = validateManifest(
      { name: "t", version: "1.0.0", description: "t", permissions: { process: [{ command: "cat", args: [{ path: "${workspace}/notes/sub/**", access: ["read"] }] }] } },
      "skill.yaml",
    );
    expect(authorize(wide, { trust: "trusted", policy, vars }).ok).toBe(false);
    expect(authorize(narrow, { trust: "trusted", policy, vars }).ok).toBe(true);
  });

  it("allows the network only when the rule and the ceiling both say network: true", () => {
    const d = checkProcess(grantFor(["**"], true), "cat", ["x"], ctx);
    expect(d.allowed && d.network).toBe(true);
    const quiet = checkProcess(grantFor(["**"]), "cat", ["x"], ctx);
    expect(quiet.allowed && quiet.network).toBe(false);
  });
});
