import ipaddr from "ipaddr.js";
import type { NetworkRule } from "../manifest/schema.js";
import type { Decision, Grant } from "./model.js";

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Parses an IP literal (brackets allowed). IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
 * (::a.b.c.d, e.g. ::7f00:1 for 127.0.0.1) IPv6 become the IPv4 address they carry, so they are
 * classified and matched as that address. undefined for names.
 */
export function parseAddress(text: string): Address | undefined {
  const bare = text.replace(/^\[|\]$/g, "");
  if (!ipaddr.isValid(bare)) return undefined;
  const addr = ipaddr.parse(bare);
  if (addr.kind() !== "ipv6") return addr;
  const v6 = addr as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  const p = v6.parts;
  // ::a.b.c.d (deprecated IPv4-compatible); :: and ::1 keep their IPv6 meaning
  if (p.slice(0, 6).every((x) => x === 0) && (p[6] ?? 0) !== 0) return ipaddr.fromByteArray([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  return addr;
}

/** Public unicast only: loopback, private, link-local, unique-local, CGNAT, unspecified, multicast, reserved, 6to4/teredo are not. */
export function isPublicAddress(addr: Address): boolean {
  return addr.range() === "unicast";
}

/** Whether a rule's host names this address or a range holding it (never by wildcard). */
export function ruleNamesAddress(ruleHost: string, addr: Address): boolean {
  const host = ruleHost.replace(/^\[|\]$/g, "");
  try {
    if (host.includes("/")) {
      const [range, bits] = ipaddr.parseCIDR(host);
      const a = range.kind() === addr.kind() ? addr : addr.kind() === "ipv4" ? (addr as ipaddr.IPv4).toIPv4MappedAddress() : undefined;
      return a !== undefined && a.kind() === range.kind() && (a as ipaddr.IPv4).match(range as ipaddr.IPv4, bits);
    }
    const named = parseAddress(host);
    return named !== undefined && named.kind() === addr.kind() && named.toNormalizedString() === addr.toNormalizedString();
  } catch {
    return false;
  }
}

export interface NetRequest {
  scheme: "http" | "https";
  host: string;
  port: number;
  method: string;
}

/** Whether a rule covers a request's host (name or IP literal), scheme, port and method. */
export function ruleMatches(rule: NetworkRule, req: NetRequest): boolean {
  if ((rule.scheme ?? "https") !== req.scheme) return false;
  if (rule.port !== undefined && rule.port !== req.port) return false;
  if (rule.methods !== undefined && !(rule.methods as string[]).includes(req.method)) return false;
  const literal = parseAddress(req.host);
  if (literal) return ruleNamesAddress(rule.host, literal);
  return hostCovers(rule.host, req.host);
}

function describe(r: NetworkRule): string {
  return `${r.scheme ?? "https"}://${r.host}${r.port ? ":" + r.port : ""}${r.methods ? " " + r.methods.join(",") : ""}`;
}

function denyMatch(grant: Grant, host: string, addr?: Address): string | undefined {
  const h = normalizeHost(host);
  return grant.denyNetwork.find((d) => {
    if (d === h) return true;
    if (d.startsWith("*.") && h.endsWith(d.slice(1))) return true;
    return addr !== undefined && ruleNamesAddress(d, addr);
  });
}

/** Pure: may this grant make this request (before DNS)? Deny rules, then declared, then ceiling. */
export function checkNetworkRequest(grant: Grant, req: NetRequest): Decision & { declared?: NetworkRule[] } {
  const literal = parseAddress(req.host);
  const deny = denyMatch(grant, req.host, literal);
  if (deny) return { allowed: false, rule: `deny:${deny}`, reason: `matches deny rule "${deny}"` };
  const declared = grant.network.filter((r) => ruleMatches(r, req));
  if (declared.length === 0) return { allowed: false, rule: "manifest", reason: `the manifest of ${grant.skill} declares no ${req.method} access to ${req.scheme}://${req.host}:${req.port}` };
  if (!grant.ceilingNetwork.some((r) => ruleMatches(r, req))) {
    return { allowed: false, rule: `ceiling:${grant.trust}`, reason: `trust level "${grant.trust}" does not allow ${req.method} ${req.scheme}://${req.host}:${req.port}` };
  }
  return { allowed: true, rule: describe(declared[0]!), declared };
}

/**
 * Pure: may the connection go to this resolved address? Deny rules win; a non-public address
 * is allowed only when both a declared rule and a ceiling rule name it (or its range) explicitly.
 */
export function checkAddress(grant: Grant, host: string, addr: Address): Decision {
  const deny = denyMatch(grant, host, addr);
  if (deny) return { allowed: false, rule: `deny:${deny}`, reason: `${host} resolves to ${addr.toString()}, which matches deny rule "${deny}"` };
  if (isPublicAddress(addr)) return { allowed: true, rule: "public-address" };
  const named = grant.network.find((r) => ruleNamesAddress(r.host, addr));
  if (named && grant.ceilingNetwork.some((r) => ruleNamesAddress(r.host, addr))) return { allowed: true, rule: describe(named) };
  return { allowed: false, rule: "private-address", reason: `${host} resolves to ${addr.toString()} (${addr.range()}), which no rule names explicitly` };
}

export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}

const IP_LIKE = /^(\[.*\]|[0-9.]+(\/\d+)?|[0-9a-f:]*:[0-9a-f:.]*(\/\d+)?)$/i;

export function hostCovers(ceilingHost: string, needHost: string): boolean {
  const c = normalizeHost(ceilingHost);
  const n = normalizeHost(needHost);
  if (c === n) return true;
  if (IP_LIKE.test(n)) {
    // Addresses and ranges are covered only when named explicitly (never by a wildcard).
    const addr = parseAddress(n);
    return addr !== undefined && ruleNamesAddress(c, addr);
  }
  if (c === "*") return true;
  if (c.startsWith("*.")) {
    const suffix = c.slice(1); // ".example.com"
    return n.endsWith(suffix) && n !== "*";
  }
  return false;
}

export function networkCovers(c: NetworkRule, n: NetworkRule): boolean {
  if (!hostCovers(c.host, n.host)) return false;
  if ((c.scheme ?? "https") !== (n.scheme ?? "https")) return false;
  if (c.port !== undefined && c.port !== n.port) return false;
  if (c.methods !== undefined && (n.methods === undefined || !n.methods.every((m) => c.methods!.includes(m)))) return false;
  return true;
}
