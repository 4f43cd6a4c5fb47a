import { createHash, createHmac } from "node:crypto";

export const GENESIS = "0".repeat(64);

/** Hash of one log line (without its newline): SHA-256, or HMAC-SHA256 when a key is set. */
export function lineHash(line: string, key?: string): string {
  return key ? createHmac("sha256", key).update(line).digest("hex") : createHash("sha256").update(line).digest("hex");
}
