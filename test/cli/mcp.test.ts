import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, EXAMPLE_SKILLS, readEvents, tempDir, waitFor, writeSkill } from "../helpers.js";

async function connect(ws: string, trust: string) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp", "--skills", join(ws, "skills"), "--workspace", ws, "--trust", trust, "--caller", "claude", "--session", `conv-${trust}`, "--audit", join(ws, `audit-${trust}.jsonl`)],
    cwd: ws,
    stderr: "pipe",
  });
  const client = new Client({ name: "skillbox-test", version: "1.0.0" });
  let listChanged = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged++;
  });
  await client.connect(transport);
  return { client, listChanged: () => listChanged };
}

describe("skillbox mcp, driven by the MCP SDK client over stdio", () => {
  let ws: string;
  let low: Awaited<ReturnType<typeof connect>>;
  let high: Awaited<ReturnType<typeof connect>>;

  beforeAll(async () => {
    ws = tempDir();
    cpSync(EXAMPLE_SKILLS, join(ws, "skills"), { recursive: true });
    mkdirSync(join(ws, "notes"));
    writeFileSync(join(ws, "notes", "a.md"), "the sandbox holds\n");
    low = await connect(ws, "untrusted");
    high = await connect(ws, "user-verified");
  });
  afterAll(async () => {
    await low.client.close();
    await high.client.close();
  });

  it("lists only the tools the trust level may run, with schemas and annotations", async () => {
    const lowTools = (await low.client.listTools()).tools;
    const names = lowTools.map((t) => t.name);
    expect(names).toContain("word-stats");
    expect(names).not.toContain("read-notes");
    expect(names).not.toContain("write-report");
    const highTools = (await high.client.listTools()).tools;
    const notes = highTools.find((t) => t.name === "read-notes");
    expect(notes).toMatchObject({
      inputSchema: { type: "object", required: ["query"] },
      outputSchema: { type: "object" },
      annotations: { readOnlyHint: true, destructiveHint: false, openWorldHint: false },
    });
    expect(notes?.description).toMatch(/notes/);
  });

  it("calls a skill and returns structured content plus text", async () => {
    const r = (await high.client.callTool({ name: "read-notes", arguments: { query: "sandbox" } })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ query: "sandbox", matches: [{ file: "notes/a.md", line: 1 }] });
    expect(JSON.parse((r.content[0] as { text: string }).text)).toEqual(r.structuredContent);
  });

  it("a tool the trust level may not run is refused with isError and the code, not a protocol error", async () => {
    const r = (await low.client.callTool({ name: "read-notes", arguments: { query: "x" } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/^E_PERMISSION_DENIED: read-notes needs read access/);
  });

  it("invalid arguments come back as isError with E_INPUT_INVALID", async () => {
    const r = (await low.client.callTool({ name: "word-stats", arguments: { text: 42 } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/^E_INPUT_INVALID: .*input\.text/);
  });

  it("an unknown tool is isError with E_SKILL_NOT_FOUND", async () => {
    const r = (await low.client.callTool({ name: "no-such-tool", arguments: {} })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/^E_SKILL_NOT_FOUND/);
  });

  it("picks up a new skill folder and sends notifications/tools/list_changed", async () => {
    writeSkill(join(ws, "skills"), "shout", "input: { type: object, properties: { text: { type: string } }, required: [text] }\n", {
      "index.js": "export default async (i) => ({ loud: i.text.toUpperCase() });",
    });
    await waitFor("notifications/tools/list_changed", () => low.listChanged() > 0);
    expect(low.listChanged()).toBeGreaterThan(0);
    expect((await low.client.listTools()).tools.map((t) => t.name)).toContain("shout");
    const r = (await low.client.callTool({ name: "shout", arguments: { text: "hi" } })) as CallToolResult;
    expect(r.structuredContent).toEqual({ loud: "HI" });
  });

  it("every call is in the security log with the caller and the session", async () => {
    // The servers write their logs asynchronously: wait until both calls' ends are there.
    const ends = () => [...readEvents(join(ws, "audit-user-verified.jsonl")), ...readEvents(join(ws, "audit-untrusted.jsonl"))].filter((e) => e["event"] === "call.end");
    await waitFor("both sessions' call.end events", () => new Set(ends().map((e) => e["session"])).size >= 2);
    const events = ends();
    expect(events.some((e) => e["skill"] === "read-notes" && e["caller"] === "claude" && e["session"] === "conv-user-verified" && e["outcome"] === "ok")).toBe(true);
    expect(events.some((e) => e["skill"] === "read-notes" && e["session"] === "conv-untrusted" && e["code"] === "E_PERMISSION_DENIED")).toBe(true);
  });
});
