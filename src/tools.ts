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
      case "mcp":
        return { name: m.name, description: m.description, inputSchema: m.input, ...(m.output ? { outputSchema: m.output } : {}), annotations: annotations(m) };
      case "openai":
        return { type: "function", function: { name: m.name, description: m.description, parameters: m.input } };
      case "anthropic":
        return { name: m.name, description: m.description, input_schema: m.input };
    }
  });
}
