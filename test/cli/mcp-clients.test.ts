import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, readEvents, tempDir, writeSkill } from "../helpers.js";

// skillbox mcp as strict clients see it: the SDK client validates every structured result
// against the tool's output schema and drops nothing.
let ws: string;
let elsewhere: string;
let client: Client;
let stderr = "";
let listChanged = 0;

beforeAll(async () => {
  ws = tempDir();
  elsewhere = tempDir();
  const skills = join(ws, "skills");
  mkdirSync(skills);
  mkdirSync(join(ws, "notes"));
  writeFileSync(join(ws, "notes", "a.md"), "hello\n");
  writeSkill(skills, "listy", "output: { type: array, items: { type: number } }\n", { "index.js": "export default async () => [1, 2, 3];" });
  writeSkill(skills, "primary", "output: { type: object, required: [answer], properties: { answer: { type: number } } }\nfallback: { skill: backup }\n", {
    "index.js": "export default async () => { throw new Error('down'); };",
  });
  writeSkill(skills, "backup", "", { "index.js": "export default async () => ({ something: 'else' });" });
  writeSkill(skills, "notes", 'permissions: { files: [{ path: "${workspace}/notes/**", access: [read, list] }] }\n', {
    "index.js": "export default async (i, ctx) => ({ files: await ctx.fs.list(ctx.env.workspace + '/notes') });",
  });
  // Started from another folder, with no --audit and no policy file: as a chat CLI does it.
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--workspace", ws, "--caller", "strict"], cwd: elsewhere, stderr: "pipe" });
  transport.stderr?.on("data", (d) => (stderr += d));
  client = new Client({ name: "strict-client", version: "1.0.0" });
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged++;
  });
  await client.connect(transport);
});

afterAll(async () => {
  await client?.close();
});

describe("skillbox mcp with a strict client", () => {
  it("prints one startup line on stderr: version, skills, trust, workspace, policy, log", async () => {
    await client.listTools();
    const line = stderr.split("\n").find((l) => l.startsWith("skillbox mcp "));
    expect(line).toMatch(/skillbox mcp \d+\.\d+\.\d+: 4 skill\(s\), 3 offered at trust "untrusted"; workspace .+; policy built-in; security log .+\.skillbox\/audit\.jsonl/);
    expect(line).toContain(ws);
  });

  it("a skill whose output is not an object keeps every tool listed; its result comes wrapped as { result }", async () => {
    const tools = (await client.listTools()).tools;
    expect(tools.map((t) => t.name).sort()).toEqual(["backup", "listy", "primary"]);
    expect(tools.find((t) => t.name === "listy")?.outputSchema).toMatchObject({ type: "object", properties: { result: { type: "array" } }, required: ["result"] });
    const r = (await client.callTool({ name: "listy", arguments: {} })) as CallToolResult;
    expect(r.isError, JSON.stringify(r)).toBeFalsy();
    expect(r.structuredContent).toEqual({ result: [1, 2, 3] });
  });

  it("a fallback's output that does not match the primary's output schema is an isError result, never invalid structured content", async () => {
    const r = (await client.callTool({ name: "primary", arguments: {} })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toBeUndefined();
    expect((r.content[0] as { text: string }).text).toMatch(/^E_OUTPUT_INVALID: the fallback backup returned output that does not match/);
  });

  it("the security log lands in the workspace, not in the folder the client started the server in", () => {
    expect(existsSync(join(ws, ".skillbox", "audit.jsonl"))).toBe(true);
    expect(existsSync(join(elsewhere, ".skillbox"))).toBe(false);
  });

  it("a refusal tells the model how it could be granted, with --workspace", async () => {
    writeSkill(join(ws, "skills"), "deep-notes", 'permissions: { files: [{ path: "${workspace}/notes/**", access: [read] }] }\n', { "index.js": "export default async () => 1;" });
    const r = (await client.callTool({ name: "notes", arguments: {} })) as CallToolResult;
    const text = (r.content[0] as { text: string }).text;
    expect(text).toMatch(/^E_PERMISSION_DENIED/);
    expect(text).toContain(`skillbox mcp --trust user-verified --workspace ${JSON.stringify(ws)}`);
  });

  it("a policy file created after start is picked up: the tool list changes and the client hears of it", async () => {
    const before = listChanged;
    writeFileSync(join(ws, "skillbox.policy.yaml"), 'version: 1\ntrust:\n  untrusted:\n    files: [{ path: "${workspace}/notes/**", access: [read, list] }]\n');
    const deadline = Date.now() + 15_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      names = (await client.listTools()).tools.map((t) => t.name);
      if (names.includes("notes") && listChanged > before) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(names).toContain("notes");
    expect(listChanged).toBeGreaterThan(before);
    const r = (await client.callTool({ name: "notes", arguments: {} })) as CallToolResult;
    expect(r.structuredContent).toEqual({ files: ["a.md"] });
  });
});

describe("skillbox mcp lifecycle", () => {
  it("refuses an unexpected positional argument instead of serving the wrong trust level", async () => {
    const child = spawn(process.execPath, [BIN, "mcp", "--workspace", ws, "--trust", "user-verified", "extra"], { stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code).toBe(2);
    expect(err).toMatch(/unexpected argument "extra"/);
  });

  it("a client that goes away (stdin ends) ends the server; its calls are logged to the end", async () => {
    const audit = join(tempDir(), "audit.jsonl");
    const child = spawn(process.execPath, [BIN, "mcp", "--workspace", ws, "--audit", audit], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const send = (msg: unknown) => child.stdin.write(JSON.stringify(msg) + "\n");
    send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "listy", arguments: {} } });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !out.includes('"id":2')) await new Promise((r) => setTimeout(r, 25));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    child.stdin.end();
    expect(await exited).toBe(0);
    const ends = readEvents(audit).filter((e) => e["event"] === "call.end");
    expect(ends).toHaveLength(1);
    expect(err).not.toMatch(/RangeError|Exception in PromiseRejectCallback/);
  }, 30_000);
});
