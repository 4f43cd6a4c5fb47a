import type { Manifest } from "./manifest/schema.js";

export const TOOL_FORMATS = ["mcp", "openai", "anthropic"] as const;
export type ToolFormat = (typeof TOOL_FORMATS)[number];

/** Hints an MCP client shows users, derived from what the manifest declares. */
export function annotations(m: Manifest) {
  const files = m.permissions.files;
  const writes = files.some((f) => f.access.some((a) => a === "write" || a === "create" || a === "delete"));
  const destructive = files.some((f) => f.access.some((a) => a === "write" || a === "delete"));
  return {
    readOnlyHint: !writes && m.permissions.process.length === 0,
    destructiveHint: destructive || m.permissions.process.length > 0,
    openWorldHint: m.permissions.network.length > 0,
  };
}

/** Tool definitions in each API's exact shape. */
export function toolDefinitions(format: ToolFormat, manifests: Manifest[]): unknown[] {
  return manifests.map((m) => {
    switch (format) {
      case "mcp": {
        const outputSchema = mcpOutputSchema(m.output);
        return { name: m.name, description: m.description, inputSchema: m.input, ...(outputSchema ? { outputSchema } : {}), annotations: annotations(m) };
      }
      case "openai":
        return { type: "function", function: { name: m.name, description: m.description, parameters: m.input } };
      case "anthropic":
        return { name: m.name, description: m.description, input_schema: m.input };
    }
  });
}

/** MCP's structured content is always an object: is this output schema one (`type: object`)? */
export function isObjectSchema(schema: unknown): boolean {
  return schema !== null && typeof schema === "object" && (schema as { type?: unknown }).type === "object";
}

/**
 * The output schema as MCP tools/list shows it. MCP requires an object, and clients drop every
 * tool of a server when one is not: a skill returning anything else is shown (and its result
 * sent) wrapped as `{ result: <output> }`.
 */
export function mcpOutputSchema(output: unknown): Record<string, unknown> | undefined {
  if (output === undefined) return undefined;
  if (isObjectSchema(output)) return output as Record<string, unknown>;
  const wrapped = { type: "object", properties: { result: output }, required: ["result"], additionalProperties: false };
  wrappedSchemas.add(wrapped);
  return wrapped;
}

const wrappedSchemas = new WeakSet<object>();
/** Whether mcpOutputSchema() made this schema by wrapping a non-object one (its results go as `{ result }`). */
export function isWrappedOutputSchema(schema: unknown): boolean {
  return schema !== null && typeof schema === "object" && wrappedSchemas.has(schema);
}
