import { createRequire } from "node:module";
import type * as SmolToml from "smol-toml";
import type { Issue } from "../errors.js";
import type { ParsedYaml } from "./yaml.js";
import { MAX_CONFIG_BYTES } from "./yaml.js";

// Loaded on first use: only TOML policies need it (require() of an ES module: synchronous on Node 24).
let toml: typeof SmolToml | undefined;
function smolToml(): typeof SmolToml {
  toml ??= createRequire(import.meta.url)("smol-toml") as typeof SmolToml;
  return toml;
}

export function isTomlFile(file: string): boolean {
  return file.toLowerCase().endsWith(".toml");
}

/**
 * Parses TOML into the same shape the YAML loader gives, so one schema validates both and
 * every issue still carries a line. smol-toml keeps no positions, so a field's line is found
 * from the text: the line that defines the longest prefix of the field's path.
 */
export function parseTomlSafe(text: string, file: string): { ok: true; yaml: ParsedYaml } | { ok: false; issues: Issue[] } {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    return { ok: false, issues: [{ file, field: "", message: `file is larger than ${MAX_CONFIG_BYTES} bytes` }] };
  }
  let value: unknown;
  try {
    // TOML dates become Date objects; the policy schema has no date fields, so they are refused there.
    value = smolToml().parse(text);
  } catch (err) {
    const message = `TOML: ${(err as Error).message.split("\n")[0]}`;
    if (err instanceof smolToml().TomlError) return { ok: false, issues: [{ file, field: "", message, line: err.line }] };
    return { ok: false, issues: [{ file, field: "", message }] };
  }
  const defined = definedKeys(text);
  return {
    ok: true,
    yaml: {
      value,
      lineOf: (path) => {
        const want = path.filter((p): p is string => typeof p === "string");
        for (let n = want.length; n >= 1; n--) {
          const prefix = want.slice(0, n).join(".");
          const hit = defined.find((d) => d.key === prefix || d.inline.has(prefix));
          if (hit) return hit.line;
        }
        return undefined;
      },
    },
  };
}

/** Each line that defines a key: its full dotted path (table header + key) and keys of inline tables on it. */
function definedKeys(text: string): { line: number; key: string; inline: Set<string> }[] {
  const out: { line: number; key: string; inline: Set<string> }[] = [];
  let table: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line);
    if (header) {
      table = splitKey(header[1]!);
      out.push({ line: i + 1, key: table.join("."), inline: new Set() });
      continue;
    }
    const assign = /^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/.exec(line);
    if (!assign) continue;
    const key = [...table, ...splitKey(assign[1]!)];
    const inline = new Set<string>();
    // `limits = { memoryMb = -1 }`: the inner keys are on this line too.
    for (const m of line.slice(assign[0].length).matchAll(/([A-Za-z0-9_-]+)\s*=/g)) inline.add([...key, m[1]!].join("."));
    out.push({ line: i + 1, key: key.join("."), inline });
  }
  return out;
}

function splitKey(key: string): string[] {
  return key.split(".").map((k) => k.trim().replace(/^["']|["']$/g, ""));
}
