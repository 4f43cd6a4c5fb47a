/** Refused calls and the permission check alone: work done before any isolate. */
import { join } from "node:path";
import { authorize, builtinPolicy, checkFileAccess, parseManifest, SkillHost } from "../src/index.js";
import { fixtures, rawFresh, time, type Row } from "./lib.js";

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "a.jsonl"), warm: false, onWarning: () => undefined });
  const denied = await time(n, () => host.call("reader", {}, { caller: { id: "b", trust: "untrusted" } }));
  await host.close();
  const raw = await time(Math.min(n, 200), () => rawFresh());

  const manifest = parseManifest('name: r\nversion: 1.0.0\ndescription: d\npermissions: { files: [{ path: "${workspace}/notes/**", access: [read, list] }] }\n', "skill.yaml");
  const policy = builtinPolicy();
  const vars = { workspace: "/ws", home: "/home/u", skill: "/s" };
  const auth = await time(n * 10, () => authorize(manifest, { trust: "user-verified", policy, vars }));
  const grant = authorize(manifest, { trust: "user-verified", policy, vars });
  if (!grant.ok) throw new Error("benchmark grant must authorize");
  const check = await time(n * 10, () => checkFileAccess(grant.grant, "/ws/notes/2026/a.md", "read", "/tmp/skillbox-x"));
  return [
    {
      scenario: "refused call (E_PERMISSION_DENIED before any isolate), host.call end to end",
      value: denied,
      baseline: { label: "raw isolated-vm fresh isolate (what a refusal saves)", value: raw },
      target: "p50 ≤ 0.2 ms",
      met: denied.p50 <= 0.2,
    },
    { scenario: "permission check per access: checkFileAccess (deny rules, declared, ceiling)", value: check, target: "p50 ≤ 20 µs", met: check.p50 <= 0.02 },
    { scenario: "authorize() a manifest (uncached: compiles its globs; hosts cache the Grant)", value: auth },
  ];
}
