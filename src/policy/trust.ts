import type { FileAccess } from "../manifest/schema.js";
import type { Ceiling, TrustLevel } from "./model.js";

/** Trust levels, lowest first. skillbox never upgrades a caller's level. */
export const TRUST_LEVELS = ["untrusted", "user-verified", "trusted", "system"] as const satisfies readonly TrustLevel[];
export type { Ceiling, CeilingLimits, TrustLevel } from "./model.js";

export function isTrustLevel(value: unknown): value is TrustLevel {
  return typeof value === "string" && (TRUST_LEVELS as readonly string[]).includes(value);
}

const ALL_ACCESS: FileAccess[] = ["read", "write", "create", "delete", "list"];

/**
 * Built-in ceilings, used for every level a policy file does not mention.
 * untrusted: nothing outside ${tmp}; user-verified: read the workspace; trusted and system:
 * read/write the workspace and any public host the skill declares. No level runs processes
 * unless a policy file says so.
 */
export const DEFAULT_CEILINGS: Record<TrustLevel, Ceiling> = {
  untrusted: { files: [], network: [], process: [], limits: { memoryMb: 32, timeoutMs: 2_000, outputBytes: 256 * 1024 } },
  "user-verified": {
    files: [{ path: "${workspace}/**", access: ["read", "list"] }],
    network: [],
    process: [],
    limits: { memoryMb: 64, timeoutMs: 10_000, outputBytes: 1024 * 1024 },
  },
  trusted: {
    files: [{ path: "${workspace}/**", access: ALL_ACCESS }],
    network: [{ host: "*" }],
    process: [],
    limits: { memoryMb: 128, timeoutMs: 30_000, outputBytes: 4 * 1024 * 1024 },
  },
  system: {
    files: [{ path: "${workspace}/**", access: ALL_ACCESS }],
    network: [{ host: "*" }],
    process: [],
    limits: { memoryMb: 256, timeoutMs: 120_000, outputBytes: 16 * 1024 * 1024 },
  },
};

/** Deny rules that are always in force; a policy file adds to them, never removes them. */
export const DEFAULT_DENY = {
  files: ["**/.ssh/**", "**/.gnupg/**", "**/.aws/**", "**/.env", "**/.env.*", "**/.git/config", "**/.netrc", "**/.npmrc", "**/.skillbox/**"],
  network: ["169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "metadata.goog", "100.100.100.200"],
};
