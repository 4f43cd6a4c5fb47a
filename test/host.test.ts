import { afterEach, describe, expect, it } from "vitest";
import type { SkillError, SkillHost } from "../dist/src/index.js";
import { fixture } from "./helpers.js";

describe("embedding API", () => {
  let host: SkillHost | undefined;
  afterEach(async () => host?.close());

  it("a chat CLI registers a skill from memory, lists it, calls it with its user's identity", async () => {
    const fx = fixture();
    host = await fx.open();
    const info = host.register({
      manifest: { name: "greet", version: "1.0.0", description: "Greets someone.", input: { type: "object", properties: { who: { type: "string" } }, required: ["who"] } },
      files: { "index.js": "import { hello } from './lib.js'; export default async (i) => ({ text: hello(i.who) });", "lib.js": "export const hello = (w) => `hello ${w}`;" },
    });
    expect(info).toMatchObject({ name: "greet", version: "1.0.0", fallback: null });
    expect(host.list().map((s) => s.name)).toContain("greet");
    expect(host.tools("anthropic")).toContainEqual({ name: "greet", description: "Greets someone.", input_schema: expect.objectContaining({ required: ["who"] }) });
    const r = await host.call("greet", { who: "ada" }, { caller: { id: "user-1", trust: "untrusted", session: "conv-1" } });
    expect(r.ok && r.output).toEqual({ text: "hello ada" });
    const end = (await fx.events()).find((e) => e["event"] === "call.end" && e["callId"] === r.callId);
    expect(end).toMatchObject({ caller: "user-1", session: "conv-1", skill: "greet" });
  });

  it("an invalid skill given from memory is refused with every issue", async () => {
    const fx = fixture();
    host = await fx.open();
    try {
      host.register({ manifest: { name: "Bad", version: "x", description: "" }, files: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as SkillError).code).toBe("E_MANIFEST_INVALID");
      expect((err as SkillError).message).toMatch(/name[\s\S]*version[\s\S]*description/);
    }
  });

  it("an unknown trust level from the host application is refused, never treated as higher", async () => {
    const fx = fixture();
    host = await fx.open();
    host.register({ manifest: { name: "noop", version: "1.0.0", description: "d" }, files: { "index.js": "export default async () => 1;" } });
    const r = await host.call("noop", {}, { caller: { id: "x", trust: "root" } });
    expect(!r.ok && r.error.code).toBe("E_INPUT_INVALID");
  });

  it("tool definitions have each format's required fields", async () => {
    const fx = fixture();
    host = await fx.open();
    host.register({ manifest: { name: "noop", version: "1.0.0", description: "Does nothing." }, files: { "index.js": "export default async () => 1;" } });
    const [mcp] = host.tools("mcp") as Array<Record<string, unknown>>;
    expect(Object.keys(mcp!).sort()).toEqual(["annotations", "description", "inputSchema", "name"]);
    const [openai] = host.tools("openai") as Array<{ type: string; function: Record<string, unknown> }>;
    expect(openai!.type).toBe("function");
    expect(Object.keys(openai!.function).sort()).toEqual(["description", "name", "parameters"]);
    const [anthropic] = host.tools("anthropic") as Array<Record<string, unknown>>;
    expect(Object.keys(anthropic!).sort()).toEqual(["description", "input_schema", "name"]);
  });
});

describe("process lifetime", () => {
  it("a program that forgets host.close() still ends by itself once its calls are done", async () => {
    const { spawnSync } = await import("node:child_process");
    const { join } = await import("node:path");
    const { EXAMPLE_SKILLS, ROOT, tempDir } = await import("./helpers.js");
    const dir = tempDir();
    const script = `const { SkillHost } = await import(${JSON.stringify(join(ROOT, "dist", "src", "index.js"))});
      const host = await SkillHost.open({ skillsDir: ${JSON.stringify(EXAMPLE_SKILLS)}, workspace: ${JSON.stringify(dir)} });
      const r = await host.call("word-stats", { text: "a b" });
      console.log(r.ok);`;
    // A handle that kept the process alive would hang it until spawnSync kills it (status null, signal SIGTERM);
    // the bound is for that case only, generous for a loaded machine, and not a timing assertion.
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe("true");
  });
});
