import { afterEach, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, writeSkill } from "../helpers.js";

let host: SkillHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

describe("a hostile glob in a manifest cannot freeze the host", () => {
  it("several ** and a long path chosen by the skill: answered within the deadline, next call served", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "globber", 'permissions: { files: [{ path: "${workspace}/**/a/**/a/**/a/**/b", access: [read] }] }\n', {
      "index.js": `export default async (i, ctx) => {
        try { await ctx.fs.readFile(ctx.env.workspace + "/" + Array(i.segments).fill("a").join("/") + "/c"); } catch (e) { return { refused: e.code ?? String(e.message) }; }
        return { read: true };
      };`,
    });
    writeSkill(fx.skills, "echo", "", { "index.js": "export default async () => ({ ok: 1 });" });
    host = await fx.open();
    const started = performance.now();
    const r = await host.call("globber", { segments: 1000 }, { caller: { trust: "system" } });
    // Outside the grant: a permission denial, decided promptly (picomatch's RegExp took 20 s at 400 segments).
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect((await host.call("echo", {})).ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
