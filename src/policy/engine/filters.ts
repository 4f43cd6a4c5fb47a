import type { FilterRule } from "../schema.js";

export type FilterStage = "input" | "output" | "request";

interface CompiledFilter {
  name: string;
  re: RegExp;
  on: ReadonlySet<FilterStage>;
  action: "log" | "redact" | "block";
}

/** Shipped presets for common secrets; enable by name under filters.presets. */
const PRESETS: Record<string, { pattern: RegExp; action: "block" }> = {
  "private-keys": { pattern: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|$)/g, action: "block" },
  "cloud-keys": { pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{35}\b|\bgh[pousr]_[0-9A-Za-z]{36,}\b|\bxox[abprs]-[0-9A-Za-z-]{10,}\b|\bsk-[A-Za-z0-9_-]{20,}\b/g, action: "block" },
  "bearer-tokens": { pattern: /\bBearer\s+[A-Za-z0-9\-._~+/]{16,}=*/g, action: "block" },
};

export function compileFilters(presets: string[], rules: FilterRule[]): CompiledFilter[] {
  const all: CompiledFilter[] = presets.map((p) => ({ name: p, re: new RegExp(PRESETS[p]!.pattern.source, "g"), on: new Set<FilterStage>(["input", "output", "request"]), action: PRESETS[p]!.action }));
  for (const r of rules) {
    let re: RegExp;
    if (r.pattern !== undefined) {
      const m = /^\/(.+)\/([a-z]*)$/s.exec(r.pattern)!;
      re = new RegExp(m[1]!, m[2]!.includes("g") ? m[2] : m[2] + "g");
    } else {
      re = new RegExp(r.terms!.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi");
    }
    all.push({ name: r.name, re, on: new Set(r.on), action: r.action });
  }
  return all;
}

export interface FilterResult {
  /** the value, with `redact` matches masked as [redacted:name] */
  value: unknown;
  /** the first `block` filter that matched */
  blocked?: string;
  /** every filter that matched (name and action), for the log; never the matched text */
  hits: { filter: string; action: string }[];
}

/**
 * Applies the filters for one stage to every string inside a JSON value. Never returns or logs
 * the matched text itself.
 */
export function applyFilters(filters: CompiledFilter[], stage: FilterStage, value: unknown): FilterResult {
  const active = filters.filter((f) => f.on.has(stage));
  if (active.length === 0) return { value, hits: [] };
  const hits = new Map<string, string>();
  let blocked: string | undefined;
  const scan = (s: string): string => {
    let out = s;
    for (const f of active) {
      f.re.lastIndex = 0;
      if (!f.re.test(out)) continue;
      hits.set(f.name, f.action);
      if (f.action === "block") blocked ??= f.name;
      else if (f.action === "redact") {
        f.re.lastIndex = 0;
        out = out.replace(f.re, `[redacted:${f.name}]`);
      }
    }
    return out;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return scan(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [scan(k), walk(x)]));
    return v;
  };
  const out = walk(value);
  return { value: out, ...(blocked ? { blocked } : {}), hits: [...hits].map(([filter, action]) => ({ filter, action })) };
}
