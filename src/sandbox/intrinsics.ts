import { randomBytes } from "node:crypto";

/** Largest request for random bytes (the web platform's getRandomValues quota). */
const MAX_RANDOM_BYTES = 65536;
/** Longest URL text (input, base or a new part value) the parser is handed. */
const MAX_URL_CHARS = 8192;
const SETTABLE = new Set(["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"]);

/**
 * The synchronous helpers the prelude reaches through one isolated-vm Callback: strings in,
 * strings out, arguments checked here because they come from skill code. Never throws.
 * - `random`, n: n bytes from node:crypto's CSPRNG, hex ("" when n is out of range)
 * - `url`, JSON [input, base | null, part | null, value | null]: the WHATWG parse of input
 *   (against base), optionally with one part set afterwards; JSON { ok, parts }
 */
export function intrinsic(op: unknown, arg: unknown): string {
  if (typeof op !== "string" || typeof arg !== "string") return "";
  try {
    if (op === "random") {
      const n = Number(arg);
      return Number.isInteger(n) && n >= 1 && n <= MAX_RANDOM_BYTES ? randomBytes(n).toString("hex") : "";
    }
    if (op === "url") return urlParts(arg);
  } catch {
    return JSON.stringify({ ok: false });
  }
  return "";
}

function urlParts(arg: string): string {
  if (arg.length > 4 * MAX_URL_CHARS) return JSON.stringify({ ok: false });
  const v: unknown = JSON.parse(arg);
  if (!Array.isArray(v) || v.length !== 4) return JSON.stringify({ ok: false });
  const [input, base, part, value] = v as unknown[];
  const short = (s: unknown) => typeof s === "string" && s.length <= MAX_URL_CHARS;
  if (!short(input) || (base !== null && !short(base)) || (part !== null && !SETTABLE.has(part as string)) || (value !== null && !short(value))) return JSON.stringify({ ok: false });
  const u = base === null ? new URL(input as string) : new URL(input as string, base as string);
  if (part !== null && value !== null) (u as unknown as Record<string, string>)[part as string] = value as string;
  const { href, origin, protocol, username, password, host, hostname, port, pathname, search, hash } = u;
  return JSON.stringify({ ok: true, parts: { href, origin, protocol, username, password, host, hostname, port, pathname, search, hash } });
}
