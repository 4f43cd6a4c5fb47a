import { jsonDepth, jsonTextDepth } from "../../util/json-depth.js";
import { compile, compileSlashed, type LinearRegex } from "../../util/regex.js";
import type { FilterRule } from "../schema.js";

export type FilterStage = "input" | "output" | "request";

interface CompiledFilter {
  name: string;
  /** linear-time: filters run over untrusted text on the host's main thread */
  re: LinearRegex;
  on: ReadonlySet<FilterStage>;
  action: "log" | "redact" | "block";
}

/**
 * The pseudo-filter that blocks a value nested deeper than MAX_JSON_DEPTH: such a value is refused
 * where it enters the host, and a filter that cannot look at all of a value never lets it through.
 */
export const DEPTH_FILTER = "max-depth";

/** Shipped presets for common secrets; enable by name under filters.presets. */
const PRESETS: Record<string, { re: LinearRegex; action: "block" }> = {
  "private-keys": { re: compile("-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\\s\\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|$)"), action: "block" },
  "cloud-keys": {
    re: compile("\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b|\\bAIza[0-9A-Za-z_-]{35}\\b|\\bgh[pousr]_[0-9A-Za-z]{36,}\\b|\\bxox[abprs]-[0-9A-Za-z-]{10,}\\b|\\bsk-[A-Za-z0-9_-]{20,}\\b"),
    action: "block",
  },
  "bearer-tokens": { re: compile("\\bBearer\\s+[A-Za-z0-9\\-._~+/]{16,}=*"), action: "block" },
};

/** Compiles the policy's filters. Patterns were checked when the policy loaded (policy/schema.ts). */
export function compileFilters(presets: string[], rules: FilterRule[]): CompiledFilter[] {
  const all: CompiledFilter[] = presets.map((p) => ({ name: p, re: PRESETS[p]!.re, on: new Set<FilterStage>(["input", "output", "request"]), action: PRESETS[p]!.action }));
  for (const r of rules) {
    const re = r.pattern !== undefined ? compileSlashed(r.pattern) : compile(r.terms!.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "i");
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

/** Scans strings with the active filters, remembering hits; returns the string with redactions. */
class Scanner {
  readonly hits = new Map<string, string>();
  blocked: string | undefined;
  constructor(private readonly active: readonly CompiledFilter[]) {}

  scan(s: string): string {
    let out = s;
    for (const f of this.active) {
      if (!f.re.test(out)) continue;
      this.hits.set(f.name, f.action);
      if (f.action === "block") this.blocked ??= f.name;
      else if (f.action === "redact") out = f.re.replaceAll(out, `[redacted:${f.name}]`);
    }
    return out;
  }

  /** Every string of a JSON value (keys too); the caller has checked its depth. */
  walk(v: unknown): unknown {
    if (typeof v === "string") return this.scan(v);
    if (Array.isArray(v)) return v.map((x) => this.walk(x));
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.scan(k), this.walk(x)]));
    return v;
  }

  /** Blocks under the name of the filter that redacted, where a redaction cannot be applied. */
  blockRedacted(): void {
    this.blocked ??= [...this.hits].find(([, action]) => action === "redact")?.[0] ?? "redact";
  }

  depthBlocked(): void {
    this.hits.set(DEPTH_FILTER, "block");
    this.blocked ??= DEPTH_FILTER;
  }

  result(): { blocked?: string; hits: { filter: string; action: string }[] } {
    const hits = [...this.hits].map(([filter, action]) => ({ filter, action }));
    return this.blocked ? { blocked: this.blocked, hits } : { hits };
  }
}

/**
 * Applies the filters for one stage to every string inside a JSON value. Never returns or logs
 * the matched text itself. A value nested deeper than MAX_JSON_DEPTH is blocked ({@link DEPTH_FILTER}).
 */
export function applyFilters(filters: CompiledFilter[], stage: FilterStage, value: unknown): FilterResult {
  const active = filters.filter((f) => f.on.has(stage));
  if (active.length === 0) return { value, hits: [] };
  const scanner = new Scanner(active);
  if (jsonDepth(value) === Infinity) {
    scanner.depthBlocked();
    return { value, ...scanner.result() };
  }
  return { value: scanner.walk(value), ...scanner.result() };
}

/** What a skill's ctx.fetch is about to send. */
export interface OutgoingRequest {
  url: string;
  headers: Readonly<Record<string, string>>;
  body?: string;
}

export interface RequestFilterResult {
  /** the request with `redact` matches masked (unchanged when nothing was redacted) */
  request: OutgoingRequest;
  blocked?: string;
  /** where the blocking match was: url, header or body */
  where?: "url" | "header" | "body";
  hits: { filter: string; action: string }[];
}

/**
 * Request filters over the raw text AND the decoded content a server will read: the URL's path and
 * query keys and values (percent-decoded), header values, and the body's strings once decoded (JSON
 * after unescaping `\uHHHH`, form fields percent-decoded). Blocked text cannot slip out in an
 * encoding the raw scan does not see.
 */
export function applyRequestFilters(filters: CompiledFilter[], request: OutgoingRequest): RequestFilterResult {
  const active = filters.filter((f) => f.on.has("request"));
  if (active.length === 0) return { request, hits: [] };
  const scanner = new Scanner(active);
  let where: RequestFilterResult["where"];
  const note = (w: NonNullable<RequestFilterResult["where"]>) => {
    if (scanner.blocked && !where) where = w;
  };

  const url = filterUrl(scanner, request.url);
  note("url");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) {
    scanner.scan(k);
    headers[k] = scanner.scan(v);
    // A header value may also carry percent-encoded text (cookies, custom headers): scan it decoded.
    const decoded = decodeLoosely(v);
    if (decoded !== v) scanner.scan(decoded);
  }
  note("header");
  let body = request.body;
  if (body !== undefined) {
    body = scanner.scan(body);
    body = filterDecodedBody(scanner, body, request.headers);
    note("body");
  }
  const out: OutgoingRequest = body === undefined ? { url, headers } : { url, headers, body };
  return { request: out, ...scanner.result(), ...(where ? { where } : {}) };
}

function filterUrl(scanner: Scanner, href: string): string {
  const raw = scanner.scan(href);
  const url = URL.parse(raw);
  if (!url) {
    // A redaction made the URL unparseable: nothing of it may be sent, under the redacting filter's name.
    scanner.blockRedacted();
    return href;
  }
  const path = decodeLoosely(url.pathname);
  const scannedPath = scanner.scan(path);
  if (scannedPath !== path) url.pathname = scannedPath;
  const entries = [...url.searchParams];
  const scanned = entries.map(([k, v]) => [scanner.scan(k), scanner.scan(v)] as [string, string]);
  if (scanned.some(([k, v], i) => k !== entries[i]![0] || v !== entries[i]![1])) url.search = new URLSearchParams(scanned).toString();
  return url.href === raw ? raw : url.href;
}

/** Scans the strings of a JSON or form body as the server will decode them; re-encodes redactions. */
function filterDecodedBody(scanner: Scanner, body: string, headers: Readonly<Record<string, string>>): string {
  const trimmed = body.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[") || trimmed.startsWith('"')) {
    if (jsonTextDepth(body) === Infinity) {
      scanner.depthBlocked();
      return body;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return body; // not JSON: the raw scan is what applies
    }
    const walked = scanner.walk(parsed);
    const text = JSON.stringify(walked);
    return text === JSON.stringify(parsed) ? body : text;
  }
  if (!body.includes("=") && !body.includes("%")) return body;
  // Form fields (declared or not) are scanned decoded; a redaction rewrites only a declared form.
  const entries = [...new URLSearchParams(body)];
  const scanned = entries.map(([k, v]) => [scanner.scan(k), scanner.scan(v)] as [string, string]);
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-type")?.[1] ?? "";
  const changed = scanned.some(([k, v], i) => k !== entries[i]![0] || v !== entries[i]![1]);
  if (!changed) return body;
  if (type.trim().toLowerCase().startsWith("application/x-www-form-urlencoded")) return new URLSearchParams(scanned).toString();
  // Encoded text that must be masked, in a body that cannot be re-encoded safely: it is not sent.
  scanner.blockRedacted();
  return body;
}

/** Percent-decodes where it can; text with a malformed escape is returned as it is. */
function decodeLoosely(s: string): string {
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
