import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { HTTP_METHODS } from "../manifest/schema.js";
import type { Grant } from "../policy/model.js";
import type { Decision } from "../policy/model.js";
import { checkAddress, checkNetworkRequest, parseAddress, type Address, type NetRequest } from "../policy/network.js";
import type { OutgoingRequest } from "../policy/engine/filters.js";
import { CapabilityFailure, PermissionDenied } from "./errors.js";

export const MAX_REQUEST_BYTES = 1024 * 1024;
export const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
export const MAX_REDIRECTS = 5;
const FORBIDDEN_HEADERS = new Set(["host", "connection", "content-length", "transfer-encoding", "upgrade", "te", "trailer", "keep-alive", "proxy-authorization", "proxy-connection", "expect"]);
/** CORS-safelisted request headers: the only ones a redirect to another origin carries on (no custom credentials such as x-api-key). */
const SAFELISTED_HEADERS = new Set(["accept", "accept-language", "content-language", "content-type"]);

/** Resolves a host name to its addresses, once per request. Injectable for tests and custom DNS. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

export interface NetScope {
  grant: Grant;
  /** performance.now() value at which the attempt's time runs out */
  deadline: number;
  resolve: Resolver;
  record(op: string, target: string, decision: Decision, extra?: Record<string, unknown>): void;
  /** the policy's request filters over URL, headers and body (raw and decoded): the masked request, or the filter that blocks it and where it matched */
  filterRequest?(request: OutgoingRequest): { request: OutgoingRequest; blocked?: string; where?: string };
}

export interface FetchResult {
  status: number;
  headers: Record<string, string>;
  text: string;
  url: string;
  redirects: number;
}

/** A URL as it may appear in the log: query values and fragments removed. */
export function redactUrl(url: URL): string {
  const q = [...url.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=[redacted]`).join("&");
  return `${url.protocol}//${url.host}${url.pathname}${q ? "?" + q : ""}`;
}

function parseInit(init: unknown): { method: string; headers: Record<string, string>; body: string | undefined } {
  const o = (init ?? {}) as Record<string, unknown>;
  if (typeof o !== "object" || Array.isArray(o)) throw new CapabilityFailure("fetch: options must be an object");
  const method = String(o["method"] ?? "GET").toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) throw new CapabilityFailure(`fetch: unsupported method ${method}`);
  const headers: Record<string, string> = {};
  const raw = o["headers"] ?? {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new CapabilityFailure("fetch: headers must be an object of strings");
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 64) throw new CapabilityFailure("fetch: more than 64 headers");
  for (const [k, v] of entries) {
    const name = k.toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new CapabilityFailure(`fetch: invalid header name ${JSON.stringify(k)}`);
    if (FORBIDDEN_HEADERS.has(name) || name.startsWith("proxy-")) throw new CapabilityFailure(`fetch: header "${k}" is set by skillbox and cannot be given`);
    const value = String(v);
    if (/[\r\n\0]/.test(value) || value.length > 8192) throw new CapabilityFailure(`fetch: invalid value for header "${k}"`);
    headers[name] = value;
  }
  let body: string | undefined;
  if (o["body"] !== undefined && o["body"] !== null) {
    body = String(o["body"]);
    if (Buffer.byteLength(body) > MAX_REQUEST_BYTES) throw new CapabilityFailure(`fetch: request body is larger than ${MAX_REQUEST_BYTES} bytes`);
    if (method === "GET" || method === "HEAD") throw new CapabilityFailure(`fetch: a ${method} request cannot have a body`);
  }
  return { method, headers, body };
}

function parseUrl(raw: unknown, base?: URL): URL {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 8192) throw new CapabilityFailure("fetch: url must be a string");
  try {
    return base ? new URL(raw, base) : new URL(raw);
  } catch {
    throw new CapabilityFailure(`fetch: invalid URL ${JSON.stringify(raw.slice(0, 200))}`);
  }
}

/** Checks one hop and resolves the address to connect to. Throws PermissionDenied. */
async function authorizeHop(scope: NetScope, url: URL, method: string): Promise<{ req: NetRequest; address: Address; rule: string }> {
  const shown = redactUrl(url);
  const deny: (rule: string, reason: string) => never = (rule, reason) => {
    const d = { allowed: false as const, rule, reason };
    scope.record("fetch", shown, d, { method });
    throw new PermissionDenied("fetch", shown, d);
  };
  if (url.protocol !== "https:" && url.protocol !== "http:") deny("scheme", `only http and https are allowed, not ${url.protocol}`);
  if (url.username !== "" || url.password !== "") deny("userinfo", "URLs with user info (user@host) are refused");
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  const scheme = url.protocol === "https:" ? "https" : "http";
  const req: NetRequest = { scheme, host, port: url.port ? Number(url.port) : scheme === "https" ? 443 : 80, method };
  const decision = checkNetworkRequest(scope.grant, req);
  if (!decision.allowed) deny(decision.rule, decision.reason);

  // Resolve once; every address is checked; the connection goes to the one checked.
  let addresses: Address[];
  const literal = parseAddress(host);
  if (literal) addresses = [literal];
  else if (host === "localhost" || host.endsWith(".localhost")) {
    // RFC 6761: always loopback, whatever a resolver says.
    addresses = [parseAddress("127.0.0.1")!, parseAddress("::1")!];
  } else {
    let names: string[];
    try {
      names = await scope.resolve(host);
    } catch (err) {
      throw new CapabilityFailure(`fetch ${shown}: cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? "DNS error"})`, true);
    }
    addresses = names.map((n) => parseAddress(n)).filter((a): a is Address => a !== undefined);
    if (addresses.length === 0) throw new CapabilityFailure(`fetch ${shown}: ${host} has no address`, true);
  }
  for (const a of addresses) {
    const d = checkAddress(scope.grant, host, a);
    if (!d.allowed) deny(d.rule, d.reason);
  }
  const address = addresses[0]!;
  scope.record("fetch", shown, decision, { method, address: address.toString() });
  return { req, address, rule: decision.rule };
}

function send(
  url: URL,
  address: Address,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const family = address.kind() === "ipv6" ? 6 : 4;
  const pinned = address.toString();
  // The connection goes to the address that was checked: no second DNS lookup, so DNS rebinding fails.
  const pinnedLookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: pinned, family }]);
    else cb(null, pinned, family);
  };
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      { method, headers: { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) }, lookup: pinnedLookup, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new CapabilityFailure(`fetch ${redactUrl(url)}: response is larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    const timer = setTimeout(() => req.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })), timeoutMs);
    req.on("close", () => clearTimeout(timer));
    req.on("timeout", () => req.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** ctx.fetch: every hop checked as a new request; returns { status, headers, text, url, redirects }. */
export async function fetchCapability(scope: NetScope, rawUrl: unknown, rawInit: unknown): Promise<FetchResult> {
  let url = parseUrl(rawUrl);
  let { method, headers, body } = parseInit(rawInit);
  if (scope.filterRequest) {
    const f = scope.filterRequest(body === undefined ? { url: url.href, headers } : { url: url.href, headers, body });
    if (f.blocked) {
      const shown = redactUrl(url);
      const d = { allowed: false as const, rule: `filters.${f.blocked}`, reason: `the request ${f.where ?? "content"} was blocked by content filter "${f.blocked}"` };
      scope.record("fetch", shown, d, { method });
      throw new PermissionDenied("fetch", shown, d);
    }
    url = new URL(f.request.url);
    headers = { ...f.request.headers };
    body = f.request.body;
  }
  for (let hop = 0; ; hop++) {
    const { address } = await authorizeHop(scope, url, method);
    const left = scope.deadline - performance.now();
    if (left <= 0) throw new CapabilityFailure(`fetch ${redactUrl(url)}: no time left in this attempt`, true);
    let res;
    try {
      res = await send(url, address, method, headers, body, Math.min(left, 30_000));
    } catch (err) {
      if (err instanceof CapabilityFailure) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? "network error";
      throw new CapabilityFailure(`fetch ${redactUrl(url)}: ${code}`, true);
    }
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(res.status) && typeof location === "string") {
      if (hop + 1 > MAX_REDIRECTS) throw new CapabilityFailure(`fetch: more than ${MAX_REDIRECTS} redirects`);
      const next = parseUrl(location, url);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
      }
      // Credentials never follow a redirect to another origin: only CORS-safelisted headers go on.
      if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => SAFELISTED_HEADERS.has(k) && !(k === "content-type" && body === undefined)));
      url = next;
      continue;
    }
    const outHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== "set-cookie") outHeaders[k] = Array.isArray(v) ? v.join(", ") : v;
    return { status: res.status, headers: outHeaders, text: res.text, url: url.toString(), redirects: hop };
  }
}
