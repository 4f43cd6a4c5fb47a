import { randomUUID } from "node:crypto";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { CallResult, SkillHost } from "../host.js";
import type { TrustLevel } from "../policy/trust.js";

export interface McpOptions {
  trust: TrustLevel;
  callerId: string;
  /** ties every call of this server's lifetime together in the log; @default a new id */
  session?: string;
  version: string;
  /** how long to wait for a burst of file changes to settle; @default 150 */
  debounceMs?: number;
}

const HINTS: Record<string, string> = {
  E_PERMISSION_DENIED: "The caller's trust level or the policy does not allow this; do not retry, ask the user.",
  E_INPUT_INVALID: "Fix the arguments to match the tool's input schema and call again.",
  E_TIMEOUT: "The tool ran out of time; it may succeed later.",
  E_RATE_LIMITED: "Wait before calling again.",
  E_SKILL_NOT_FOUND: "Use tools/list to see the available tools.",
};

/** A CallResult as an MCP tool result: structured output plus text, or isError with the code and what to do. */
export function toToolResult(r: CallResult): CallToolResult {
  if (r.ok) {
    const structured = r.output !== null && typeof r.output === "object" && !Array.isArray(r.output) ? (r.output as Record<string, unknown>) : undefined;
    return { content: [{ type: "text", text: JSON.stringify(r.output) }], ...(structured ? { structuredContent: structured } : {}) };
  }
  const hint = HINTS[r.error.code];
  return { isError: true, content: [{ type: "text", text: `${r.error.code}: ${r.error.message}${hint ? `\n${hint}` : ""}` }] };
}

/** Serves a host's skills as MCP tools over stdio. stdout carries protocol messages only. */
export async function serveMcp(host: SkillHost, options: McpOptions): Promise<{ close(): Promise<void> }> {
  const session = options.session ?? `mcp-${randomUUID()}`;
  const server = new Server({ name: "skillbox", version: options.version }, { capabilities: { tools: { listChanged: true } } });

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: host.tools("mcp", { trust: options.trust }) as never[] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const args = req.params.arguments ?? {};
    const result = await host.call(req.params.name, args, { caller: { id: options.callerId, trust: options.trust, session } });
    return toToolResult(result);
  });

  // Skill folders or the policy changed: reloaded (validated first); the tool list may differ.
  const stopWatching = host.watch(() => void server.sendToolListChanged().catch(() => undefined), options.debounceMs ?? 150);

  const transport = new StdioServerTransport();
  await server.connect(transport);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    stopWatching();
    await server.close().catch(() => undefined);
    await host.close();
  };
  transport.onclose = () => void close();
  process.stdin.on("end", () => void close());
  return { close };
}
