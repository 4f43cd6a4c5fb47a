import { describe, expect, it } from "vitest";
import { authorize, builtinPolicy, checkFileAccess, parsePolicy, type Manifest } from "../../dist/src/index.js";
import { parseManifest } from "../../dist/src/index.js";

const vars = { workspace: "/ws", home: "/home/u", skill: "/skills/s" };

function manifest(permissions: string, limits = ""): Manifest {
  return parseManifest(`name: s\nversion: 1.0.0\ndescription: d\npermissions:\n${permissions}\n${limits}`, "skill.yaml");
}

const policyText = `
version: 1
trust:
  trusted:
    process:
      - { command: git, args: ["log", "--oneline", "/^-n$/", "/^[0-9]{1,3}$/"] }
    network:
      - { host: "*.example.com", methods: [GET] }
deny:
  files: ["**/secret/**"]
  network: ["evil.example.com"]
`;
const policy = parsePolicy(policyText, "p.yaml");

describe("authorize: declared needs vs. trust ceiling minus deny rules", () => {
  it.each([
    // [what, permissions yaml, trust, expected ok, expected uncovered targets]
    ["no needs at all: every level", "  files: []", "untrusted", true, []],
    ["workspace read at untrusted", `  files: [{ path: "\${workspace}/notes/**", access: [read] }]`, "untrusted", false, ["${workspace}/notes/**"]],
    ["workspace read at user-verified", `  files: [{ path: "\${workspace}/notes/**", access: [read, list] }]`, "user-verified", true, []],
    ["workspace write at user-verified", `  files: [{ path: "\${workspace}/out/**", access: [write] }]`, "user-verified", false, ["${workspace}/out/**"]],
    ["workspace write at trusted", `  files: [{ path: "\${workspace}/out/**", access: [write, create, delete] }]`, "trusted", true, []],
    ["outside the workspace at trusted", `  files: [{ path: "/etc/**", access: [read] }]`, "trusted", false, ["/etc/**"]],
    ["sibling-prefix folder of the workspace", `  files: [{ path: "/ws-evil/**", access: [read] }]`, "system", false, ["/ws-evil/**"]],
    ["${tmp} at untrusted is always granted", `  files: [{ path: "\${tmp}/**", access: [read, write, create, delete, list] }]`, "untrusted", true, []],
    ["a deny rule wins at system", `  files: [{ path: "\${workspace}/secret/**", access: [read] }]`, "system", false, ["${workspace}/secret/**"]],
    ["built-in deny: .ssh", `  files: [{ path: "\${workspace}/.ssh/id_rsa", access: [read] }]`, "system", false, ["${workspace}/.ssh/id_rsa"]],
    ["network at user-verified", `  network: [{ host: api.example.com }]`, "user-verified", false, ["https://api.example.com"]],
    ["network inside the policy's *.example.com GET", `  network: [{ host: api.example.com, methods: [GET] }]`, "trusted", true, []],
    ["network method wider than the ceiling", `  network: [{ host: api.example.com, methods: [GET, POST] }]`, "trusted", false, ["https://api.example.com [GET,POST]"]],
    ["network deny rule", `  network: [{ host: evil.example.com, methods: [GET] }]`, "trusted", false, ["evil.example.com"]],
    ["an IP address is never covered by a host wildcard", `  network: [{ host: "127.0.0.1" }]`, "system", false, ["https://127.0.0.1"]],
    ["process not in any default ceiling", `  process: [{ command: git, args: [log] }]`, "system", false, ["git log"]],
    ["process inside the policy's git rule", `  process: [{ command: git, args: [log, "--oneline"] }]`, "trusted", true, []],
    ["process argument pattern wider than the ceiling", `  process: [{ command: git, args: ["*"] }]`, "trusted", false, ["git *"]],
  ] as const)("%s", (_what, perms, trust, ok, targets) => {
    const r = authorize(manifest(perms), { trust, policy, vars });
    expect(r.ok).toBe(ok);
    if (!r.ok) expect(r.needs.map((n) => n.target).filter((t, i, a) => a.indexOf(t) === i)).toEqual(targets);
  });

  it("lists every uncovered need at once, each with its reason", () => {
    const m = manifest(`  files: [{ path: "\${workspace}/**", access: [read, write] }]\n  network: [{ host: a.example.org }]`, "limits: { memoryMb: 512 }");
    const r = authorize(m, { trust: "untrusted", policy: builtinPolicy(), vars });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.needs.map((n) => `${n.kind}:${n.access ?? ""}`)).toEqual(["files:read", "files:write", "network:", "limits:"]);
    expect(r.needs.every((n) => n.reason.length > 0)).toBe(true);
  });

  it("effective limits: the manifest's own, else the ceiling's", () => {
    const r = authorize(manifest("  files: []", "limits: { timeoutMs: 500 }"), { trust: "untrusted", policy: builtinPolicy(), vars });
    expect(r.ok && r.grant.limits).toEqual({ memoryMb: 32, timeoutMs: 500, outputBytes: 256 * 1024 });
  });

  it("is pure: same inputs, same answer, nothing touched", () => {
    const m = manifest(`  files: [{ path: "\${workspace}/notes/**", access: [read] }]`);
    const snapshot = JSON.stringify({ m, policy, vars });
    const a = authorize(m, { trust: "user-verified", policy, vars });
    const b = authorize(m, { trust: "user-verified", policy, vars });
    expect(a.ok && a.grant.files.map((f) => f.pattern)).toEqual(["/ws/notes/**"]);
    // Same answer (compiled matchers are fresh closures each time, so compare everything else).
    const plain = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === "function" ? "[fn]" : v instanceof Set ? [...(v as Set<unknown>)].sort() : v));
    expect(plain(b)).toBe(plain(a));
    // Neither the manifest, the policy nor the variables were changed by it.
    expect(JSON.stringify({ m, policy, vars })).toBe(snapshot);
  });
});

describe("checkFileAccess: every access checked against declared ∩ ceiling − deny", () => {
  const m = manifest(`  files:\n    - { path: "\${workspace}/data/**", access: [read, list] }\n    - { path: "\${tmp}/**", access: [read, write, create] }`);
  const r = authorize(m, { trust: "user-verified", policy: builtinPolicy(), vars });
  if (!r.ok) throw new Error("fixture must authorize");
  const tmp = "/tmp/skillbox-abc";
  it.each([
    ["/ws/data/a.txt", "read", true, "${workspace}/data/**"],
    ["/ws/data", "list", true, "${workspace}/data/**"],
    ["/ws/data/a.txt", "write", false, "manifest"],
    ["/ws/data-evil/a.txt", "read", false, "manifest"],
    ["/ws/other.txt", "read", false, "manifest"],
    ["/etc/passwd", "read", false, "manifest"],
    ["/ws/data/.env", "read", false, "deny:**/.env"],
    ["/ws/data/x/.ssh/id_rsa", "read", false, "deny:**/.ssh/**"],
    [`${tmp}/scratch.txt`, "create", true, "${tmp}/**"],
    [`${tmp}-other/scratch.txt`, "create", false, "manifest"],
    ["/.skillbox-call-tmp/x", "read", false, "path"],
  ] as const)("%s %s -> %s", (path, access, allowed, rule) => {
    const d = checkFileAccess(r.grant, path, access, tmp);
    expect(d.allowed).toBe(allowed);
    expect(d.rule).toBe(rule);
  });
});
