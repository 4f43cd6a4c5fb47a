import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixture, writeSkill } from "../helpers.js";

// The warning about an unwritable security log says what happens to calls under the policy in force.
describe("an unwritable security log", () => {
  it.each([
    ["open", /calls go on, lost events are counted/],
    ["closed", /calls are refused \(audit\.failMode: closed\)/],
  ] as const)("failMode %s: the warning says what happens to calls", async (failMode, message) => {
    const fx = fixture();
    writeSkill(fx.skills, "noop", "", { "index.js": "export default async () => 1;" });
    writeFileSync(join(fx.root, "not-a-dir"), "a file where the log's folder should be");
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\naudit: { failMode: ${failMode} }\n`);
    const warnings: string[] = [];
    const host = await fx.open({ policy: join(fx.root, "policy.yaml"), audit: join(fx.root, "not-a-dir", "audit.jsonl"), onWarning: (m) => warnings.push(m) });
    const r = await host.call("noop", {}, { caller: { id: "t", trust: "untrusted" } });
    await host.close();
    const warning = warnings.find((w) => w.includes("cannot write the security log"));
    expect(warning, warnings.join("\n")).toMatch(message);
    if (failMode === "closed") expect(r.ok).toBe(false);
    else expect(r.ok).toBe(true);
  });
});
