import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, readEvents, tempDir, waitFor, writeSkill } from "../helpers.js";

// An impatient chat-CLI user: notifications/cancelled stops the call (no further attempt, no
// fallback) and the log says so; a client that asks for progress hears about each attempt.
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
});

function events(audit: string): Array<Record<string, unknown>> {
  try {
    return readEvents(audit);
  } catch {
    return []; // not written yet
  }
}

async function serve(ws: string, audit: string): Promise<Client> {
  const client = new Client({ name: "impatient", version: "1" });
  clients.push(client);
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--workspace", ws, "--audit", audit, "--trust", "trusted"], stderr: "pipe" }));
  return client;
}

describe("skillbox mcp: cancellation and progress", () => {
  it("notifications/cancelled ends the call as E_CANCELLED after one attempt, with no retry and no fallback", async () => {
    const ws = tempDir();
    mkdirSync(join(ws, "skills"));
    // Retries and a fallback are declared: a cancelled call must use neither.
    writeSkill(join(ws, "skills"), "slow", "retry: { attempts: 3, initialDelayMs: 10 }\nfallback: { skill: quick }\nlimits: { timeoutMs: 10000 }\n", {
      "index.js": "export default async () => { await new Promise((r) => setTimeout(r, 9000)); return { done: true }; };",
    });
    writeSkill(join(ws, "skills"), "quick", "", { "index.js": "export default async () => ({ quick: true });" });
    const audit = join(tempDir(), "audit.jsonl");
    const client = await serve(ws, audit);
    const ac = new AbortController();
    const call = client.callTool({ name: "slow", arguments: {} }, undefined, { signal: ac.signal }).catch((e: Error) => e);
    await waitFor("the first attempt to start", () => events(audit).some((e) => e["event"] === "attempt.start" && e["skill"] === "slow"));
    const abortedAt = Date.now();
    ac.abort("the user changed their mind");
    expect(await call).toBeInstanceOf(Error);
    await waitFor("call.end of the cancelled call", () => events(audit).some((e) => e["event"] === "call.end" && e["skill"] === "slow"));
    const log = events(audit);
    const end = log.find((e) => e["event"] === "call.end" && e["skill"] === "slow");
    expect(end).toMatchObject({ code: "E_CANCELLED", attempts: 1, fallback: null });
    // Ended on the abort, not by running out its 9 s sleep or its 10 s timeout.
    expect(Date.parse(String(end?.["time"])) - abortedAt).toBeLessThan(5_000);
    expect(log.filter((e) => e["event"] === "attempt.start")).toHaveLength(1);
    expect(log.some((e) => e["event"] === "fallback.start" || e["skill"] === "quick")).toBe(false);
  }, 60_000);

  it("a request with a progressToken hears notifications/progress for each attempt of a retrying call", async () => {
    const ws = tempDir();
    mkdirSync(join(ws, "skills"));
    writeSkill(join(ws, "skills"), "flaky", "retry: { attempts: 3, initialDelayMs: 10, jitter: false }\n", {
      "index.js": "export default async (input, ctx) => { if (ctx.attempt < 3) throw new ctx.RetryableError('busy'); return { attempt: ctx.attempt }; };",
    });
    const audit = join(tempDir(), "audit.jsonl");
    const client = await serve(ws, audit);
    const heard: Array<{ progress: number; total?: number | undefined; message?: string | undefined }> = [];
    const r = await client.callTool({ name: "flaky", arguments: {} }, undefined, { onprogress: (p) => heard.push(p) });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toEqual({ attempt: 3 });
    expect(heard.length).toBeGreaterThanOrEqual(3);
    expect(heard.every((p) => p.total === 3)).toBe(true);
    // Progress only moves forward, and names the attempts.
    for (let i = 1; i < heard.length; i++) expect(heard[i]!.progress).toBeGreaterThan(heard[i - 1]!.progress);
    expect(heard.map((p) => p.message ?? "").join("\n")).toMatch(/attempt 3 of 3/);
  }, 60_000);
});
