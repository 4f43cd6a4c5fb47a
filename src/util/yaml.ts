import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { Issue } from "../errors.js";

/** Maximum size of a manifest or policy file. Larger files are refused before parsing. */
export const MAX_CONFIG_BYTES = 256 * 1024;

export interface ParsedYaml {
  value: unknown;
  /** Line (1-based) of the node at `path`, or of its nearest existing parent. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/**
 * Parses YAML safely: no aliases (so no expansion bombs), no custom tags, unique keys,
 * and every syntax problem reported with its line.
 */
export function parseYamlSafe(text: string, file: string): { ok: true; yaml: ParsedYaml } | { ok: false; issues: Issue[] } {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    return { ok: false, issues: [{ file, field: "", message: `file is larger than ${MAX_CONFIG_BYTES} bytes` }] };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, customTags: [], prettyErrors: false, strict: true });
  const issues: Issue[] = [];
  const lineAt = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  for (const e of [...doc.errors, ...doc.warnings]) {
    const message = e.message.split("\n")[0] ?? e.message;
    const line = lineAt(e.pos[0]);
    issues.push(line === undefined ? { file, field: "", message: `YAML: ${message}` } : { file, field: "", message: `YAML: ${message}`, line });
  }
  let value: unknown;
  if (issues.length === 0) {
    try {
      // maxAliasCount 0: any alias is refused; anchors/aliases have no use in a manifest.
      value = doc.toJS({ maxAliasCount: 0 });
    } catch (err) {
      issues.push({ file, field: "", message: `YAML: ${(err as Error).message.split("\n")[0]}` });
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, yaml: { value, lineOf: (path) => lineOfPath(doc, lineCounter, path) } };
}

function lineOfPath(doc: Document, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 1; n--) {
    // Prefer the key's line ("rateLimits:" rather than the value below it).
    const parent: unknown = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1) as unknown[], true);
    const last = path[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === last);
      const node = pair ? (isNode(pair.key) ? pair.key : pair.value) : undefined;
      if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
    } else if (isSeq(parent) && typeof last === "number") {
      const node = parent.items[last];
      if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
    }
  }
  const root = doc.contents;
  return isNode(root) && root.range ? counter.linePos(root.range[0]).line : undefined;
}
