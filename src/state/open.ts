import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { MemoryStateStore } from "./memory.js";
import { isPostgresUrl } from "./spec.js";
import { SqliteStateStore } from "./sqlite.js";
import type { Approval, StateStore, StoreOptions } from "./store.js";

export { isPostgresUrl } from "./spec.js";

export interface OpenStateOptions extends StoreOptions {
  /** relative folders are taken from here */
  workspace: string;
  onError?: (err: Error) => void;
}

/**
 * Opens the state store a spec names: `memory`, a `postgres://` URL, or a folder (the embedded
 * database `state.db` in it). Creates or migrates the schema; refuses a store it cannot open with
 * a clear message.
 */
export async function openStateStore(spec: string, options: OpenStateOptions): Promise<StateStore> {
  const { workspace, ...rest } = options;
  if (spec === "memory") return new MemoryStateStore(rest);
  if (isPostgresUrl(spec)) {
    // pg loads only for hosts that use PostgreSQL: every other process start would pay for it.
    const { PgStateStore } = await import("./postgres.js");
    const store = new PgStateStore(spec, rest);
    try {
      await store.open();
    } catch (err) {
      await store.close();
      throw new Error(`cannot open the state store ${store.location}: ${(err as Error).message}`);
    }
    return store;
  }
  const dir = isAbsolute(spec) ? spec : resolve(workspace, spec);
  try {
    return new SqliteStateStore(dir, rest);
  } catch (err) {
    throw new Error(`cannot open the state store in ${dir}: ${(err as Error).message}`);
  }
}

/** Who loads a policy from this process: user@host. */
export function localIdentity(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `${user}@${hostname()}`;
}

/**
 * Imports the file state older versions kept in a state folder: `approvals.json` (renamed to
 * `approvals.json.imported` once its approvals are in the store) and the policy copies under
 * `policies/` (left in place). Safe to run on every start: what is there already is kept.
 */
export async function importLegacyState(store: StateStore, dir: string, warn: (m: string) => void): Promise<{ approvals: number; versions: number }> {
  let approvals = 0;
  let versions = 0;
  const file = join(dir, "approvals.json");
  if (existsSync(file)) {
    try {
      const data = JSON.parse(readFileSync(file, "utf8")) as { approvals?: Approval[] };
      const list = Array.isArray(data.approvals) ? data.approvals.filter(isApproval) : [];
      approvals = await store.importApprovals(list);
      renameSync(file, `${file}.imported`);
    } catch (err) {
      warn(`skillbox: could not import ${file} into the state store: ${(err as Error).message}`);
    }
  }
  const pdir = join(dir, "policies");
  if (existsSync(pdir)) {
    const known = new Set((await store.listPolicyVersions()).map((v) => v.hash));
    for (const name of readdirSync(pdir).filter((f) => f.endsWith(".yaml"))) {
      try {
        const path = join(pdir, name);
        const document = readFileSync(path, "utf8");
        const hash = createHash("sha256").update(document).digest("hex");
        if (known.has(hash)) continue;
        const version = name.slice(0, -".yaml".length);
        const at = version.lastIndexOf("@");
        await store.recordPolicyVersion({ version, label: at > 0 ? version.slice(0, at) : null, hash, document, loadedAt: statSync(path).mtime.toISOString(), loadedBy: "imported", source: path });
        versions++;
      } catch (err) {
        warn(`skillbox: could not import policy copy ${name}: ${(err as Error).message}`);
      }
    }
  }
  return { approvals, versions };
}

function isApproval(a: unknown): a is Approval {
  const x = a as Record<string, unknown>;
  return (
    typeof x === "object" &&
    x !== null &&
    ["id", "skill", "caller", "inputDigest", "rule", "status", "createdAt", "expiresAt"].every((k) => typeof x[k] === "string") &&
    typeof x["expiresInMs"] === "number"
  );
}
