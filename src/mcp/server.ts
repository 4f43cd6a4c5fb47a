import { randomUUID } from "node:crypto";
import { Validator, type Schema } from "@cfworker/json-schema";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { CallOptions } from "../call/caller.js";
import type { CallResult } from "../call/result.js";
import type { SkillHost } from "../host.js";
import { TRUST_LEVELS, type TrustLevel } from "../policy/trust.js";
import { isWrappedOutputSchema } from "../tools.js";

export interface McpOptions {
  trust: TrustLevel;
  callerId: string;
  /** ties every call of this server's lifetime together in the log; @default a new id */
  session?: string;
  version: string;
  /** how long to wait for a burst of file changes to settle; @default 150 */
  debounceMs?: number;
  /** the startup line and problems (never stdout: it carries the protocol); @default stderr */
  log?: (line: string) => void;
  /** warm the sandbox workers once connected; @default true */
  warm?: boolean;
}

export interface McpServerHandle {
  /** cancels calls in flight, stops watching, flushes the security log and closes the host */
  close(): Promise<void>;
  /** settles once the server has closed (client gone, stdin ended, or close()) */
  closed: Promise<void>;
}

/** What a model should do next, per error code; commands carry --workspace so they work from any folder. */
function hint(code: string, host: SkillHost, options: McpOptions, r: CallResult & { ok: false }, name: string): string {
  const ws = ` --workspace ${JSON.stringify(host.workspace)}`;
  switch (code) {
    case "E_PERMISSION_DENIED": {
      let lowest: string | undefined;
      try {
        lowest = TRUST_LEVELS.find((t) => TRUST_LEVELS.indexOf(t) > TRUST_LEVELS.indexOf(options.trust) && host.authorize(name, t).ok);
      } catch {
        lowest = undefined;
      }
      const how = lowest
        ? ` The server runs at trust "${options.trust}"; "${lowest}" may run this tool (skillbox mcp --trust ${lowest}${ws}), or the policy can grant it (skillbox policy show --trust ${options.trust}${ws}).`
        : "";
      return `The caller's trust level or the policy does not allow this; do not retry, ask the user.${how}`;
    }
    case "E_APPROVAL_REQUIRED": {
      const id = (r.error.details as { approvalId?: string } | undefined)?.approvalId;
      return `A person must approve this call first: ask the user to run \`skillbox approvals approve ${id ?? "<id>"}${ws}\`, then call the tool again with the same arguments.`;
    }
    case "E_INPUT_INVALID":
      return "Fix the arguments to match the tool's input schema and call again.";
    case "E_TIMEOUT":
      return "The tool ran out of time; it may succeed later.";
    case "E_RATE_LIMITED":
      return "Wait before calling again.";
    case "E_SKILL_NOT_FOUND":
      return "Use tools/list to see the available tools.";
    case "E_CANCELLED":
      return "The call was cancelled.";
    default:
      return "";
  }
}

const validators = new Map<string, Validator>();
/** Errors of `value` against a published output schema (compiled once per schema text). */
function schemaErrors(schema: unknown, value: unknown): string[] {
  const key = JSON.stringify(schema);
  let v = validators.get(key);
  if (!v) {
    v = new Validator(schema as Schema, "2020-12", false);
    validators.set(key, v);
  }
  const res = v.validate(value);
  return res.valid ? [] : res.errors.slice(0, 5).map((e) => `${e.instanceLocation}: ${e.error}`);
}

/**
 * A CallResult as an MCP tool result: text plus structured content that matches the tool's
 * published output schema (a non-object output wrapped as `{ result }`), or isError with the
 * code and what to do. Output that does not match the schema the client was shown, such as a
 * fallback's, is never sent as structured content: strict clients would reject the whole reply.
 */
export function toToolResult(r: CallResult, outputSchema?: unknown, hintText = ""): CallToolResult {
  if (!r.ok) return { isError: true, content: [{ type: "text", text: `${r.error.code}: ${r.error.message}${hintText ? `\n${hintText}` : ""}` }] };
  const text = JSON.stringify(r.output) ?? "null";
  if (outputSchema === undefined) {
    const structured = r.output !== null && typeof r.output === "object" && !Array.isArray(r.output) ? (r.output as Record<string, unknown>) : undefined;
    return { content: [{ type: "text", text }], ...(structured ? { structuredContent: structured } : {}) };
  }
  const structured = (isWrappedOutputSchema(outputSchema) ? { result: r.output } : r.output) as Record<string, unknown>;
  const errors = structured !== null && typeof structured === "object" && !Array.isArray(structured) ? schemaErrors(outputSchema, structured) : ["not an object"];
  if (errors.length > 0) {
    const from = r.fallback ? `the fallback ${r.fallback}` : "the skill";
    return {
      isError: true,
      content: [{ type: "text", text: `E_OUTPUT_INVALID: ${from} returned output that does not match the tool's output schema (${errors.join("; ")}). Its output as text:\n${text}` }],
    };
  }
  return { content: [{ type: "text", text }], structuredContent: structured };
}

/** Serves a host's skills as MCP tools over stdio. stdout carries protocol messages only. */
export async function serveMcp(host: SkillHost, options: McpOptions): Promise<McpServerHandle> {
  const session = options.session ?? `mcp-${randomUUID()}`;
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const server = new Server({ name: "skillbox", version: options.version }, { capabilities: { tools: { listChanged: true } } });
  const inflight = new Set<AbortController>();

  const published = () => host.tools("mcp", { trust: options.trust }) as { name: string; outputSchema?: unknown }[];
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: published() as never[] }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const name = req.params.name;
    const args = req.params.arguments ?? {};
    // Aborted by notifications/cancelled (the SDK's signal) or when this server closes.
    const controller = new AbortController();
    const abort = () => controller.abort(extra.signal.reason ?? new Error("cancelled by the client"));
    if (extra.signal.aborted) abort();
    else extra.signal.addEventListener("abort", abort, { once: true });
    inflight.add(controller);
    const progressToken = req.params._meta?.progressToken;
    let progress = 0;
    // Progress sent for this request; the answer waits for them (a client drops progress that
    // arrives after the answer, so an answer that overtook them would lose them).
    const progressSent: Promise<unknown>[] = [];
    const callOptions = {
      caller: { id: options.callerId, trust: options.trust, session },
      signal: controller.signal,
      ...(progressToken !== undefined
        ? {
            onProgress: (p: { attempt?: number; attempts?: number; retryDelayMs?: number; message?: string }) => {
              // Strictly increasing, as MCP requires: attempt N starting is N, a retry of N scheduled is N - 0.5.
              const at = (p.attempt ?? progress + 1) - (p.retryDelayMs ? 0.5 : 0);
              progress = at > progress ? at : progress + 0.01;
              const message =
                p.message ??
                [p.attempt !== undefined ? `attempt ${p.attempt}${p.attempts !== undefined ? ` of ${p.attempts}` : ""}` : "", p.retryDelayMs ? `in ${Math.round(p.retryDelayMs)} ms` : ""]
                  .filter(Boolean)
                  .join(", ");
              progressSent.push(
                extra
                  .sendNotification({
                    method: "notifications/progress",
                    params: { progressToken, progress, ...(p.attempts !== undefined ? { total: p.attempts } : {}), ...(message ? { message } : {}) },
                  })
                  .catch(() => undefined),
              );
            },
          }
        : {}),
    };
    try {
      const result = await host.call(name, args, callOptions as CallOptions);
      await Promise.all(progressSent);
      const tool = published().find((t) => t.name === name);
      return toToolResult(result, tool?.outputSchema, result.ok ? "" : hint(result.error.code, host, options, result, name));
    } finally {
      inflight.delete(controller);
      extra.signal.removeEventListener("abort", abort);
    }
  });

  // Skill folders or the policy changed: reloaded (validated first); the tool list may differ.
  const stopWatching = host.watch(() => void server.sendToolListChanged().catch(() => undefined), options.debounceMs ?? 150);

  let markClosed!: () => void;
  const closed = new Promise<void>((r) => (markClosed = r));
  let closing = false;
  // Closing the server closes the transport, whose onclose calls this again: the flag is set
  // before anything runs, so that second call returns at once.
  const close = async () => {
    if (closing) return closed;
    closing = true;
    stopWatching();
    for (const c of inflight) c.abort(new Error("the MCP server is shutting down"));
    await server.close().catch(() => undefined);
    await host.close();
    markClosed();
  };

  // Answer `initialize` first: a client that starts us waits for nothing else.
  const transport = new StdioServerTransport();
  transport.onclose = () => void close();
  await server.connect(transport);
  // A client that goes away (stdin ends, stdout breaks) cancels its calls; the log is flushed.
  process.stdin.once("end", () => void close());
  process.stdin.once("close", () => void close());
  process.stdout.removeAllListeners("error");
  process.stdout.on("error", () => void close());

  const skills = host.list().length;
  const offered = published().length;
  log(
    `skillbox mcp ${options.version}: ${skills} skill(s), ${offered} offered at trust "${options.trust}"; workspace ${host.workspace}; policy ${host.policy.source === "built-in" ? "built-in" : `${host.policy.source} (${host.policy.version})`}; security log ${host.audit.file}; skills ${host.skillsDir}`,
  );
  if (options.warm !== false) void host.warm().catch((err: Error) => log(`skillbox mcp: the sandbox could not start: ${err.message}`));
  return { close, closed };
}
