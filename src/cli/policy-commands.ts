import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AuditLog } from "../audit/log.js";
import { loadSkillDir, MANIFEST_FILE } from "../manifest/load.js";
import { generateSigningKey, parseSigningKey, SIGNATURE_FILE, signSkill } from "../manifest/signing.js";
import { diffPolicies } from "../policy/engine/diff.js";
import { describeExpect, runExpectations } from "../policy/engine/selftest.js";
import { builtinPolicy, loadPolicyFile, parsePolicy, type Policy } from "../policy/load.js";
import { importLegacyState, isPostgresUrl, localIdentity, openStateStore } from "../state/open.js";
import type { Approval, PolicyVersion, StateStore } from "../state/store.js";
import { listSkillDirs } from "../manifest/load.js";
import { DEFAULTS } from "../config/defaults.js";
import { parse, UsageError, type Out } from "./common.js";
import { table } from "./report.js";

/**
 * Opens the state store named by --state (a folder or a postgres:// URL; default
 * <workspace>/.skillbox), importing the file state of older versions from a folder. Runs `fn`
 * and closes the store. A store that cannot be opened is a usage error (exit 2).
 */
async function withState<T>(v: { state?: string | undefined; workspace?: string | undefined }, command: string, io: Out, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const workspace = resolve(v.workspace ?? ".");
  const spec = v.state === undefined ? join(workspace, DEFAULTS.stateDir) : isPostgresUrl(v.state) ? v.state : resolve(v.state);
  let store: StateStore;
  try {
    store = await openStateStore(spec, { workspace, onError: (e) => io.err(`skillbox ${command}: state store: ${e.message}`) });
  } catch (err) {
    throw new UsageError(`skillbox ${command}: ${(err as Error).message}`);
  }
  try {
    if (!isPostgresUrl(spec)) await importLegacyState(store, spec, io.err);
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A stored input for one table cell. */
function brief(v: unknown, max = 60): string {
  if (v === undefined) return "";
  const s = JSON.stringify(v) ?? "";
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export async function cmdApprovals(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(
    args,
    { state: { type: "string" }, workspace: { type: "string" }, audit: { type: "string" }, reason: { type: "string" }, json: { type: "boolean" }, limit: { type: "string" } },
    "approvals",
  );
  const [sub, id] = positionals;
  if (sub === "list" || sub === undefined) {
    const limit = values.limit === undefined ? 1000 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`skillbox approvals list: --limit must be a positive whole number, got "${values.limit}"`);
    return withState(values, "approvals", io, async (store) => {
      const list = await store.listApprovals(Date.now(), limit);
      if (values.json) io.out(JSON.stringify(list));
      else if (list.length === 0) io.out(`no approvals in ${store.location}`);
      else
        for (const l of table(
          ["id", "status", "skill", "caller", "input", "created", "expires", "decided by", "reason"],
          list.map((a) => [a.id, a.status, a.skill, a.caller, brief(a.input), a.createdAt.slice(0, 19), a.expiresAt.slice(0, 19), a.decidedBy ?? "", a.reason ?? ""]),
        ))
          io.out(l);
      return 0;
    });
  }
  if (sub !== "approve" && sub !== "deny") throw new UsageError(`skillbox approvals: expected list, approve or deny, got "${sub}"`);
  if (!id) throw new UsageError(`skillbox approvals ${sub}: which approval? (skillbox approvals list shows the ids)`);
  let a: Approval;
  try {
    a = await withState(values, "approvals", io, (store) => store.decideApproval(id, sub === "approve" ? "approved" : "denied", `cli:${localIdentity()}`, values.reason, Date.now()));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    io.err(`skillbox approvals ${sub}: ${(err as Error).message}`);
    return 2;
  }
  // The decision itself goes to the security log.
  const log = new AuditLog({ file: resolve(values.audit ?? join(values.workspace ?? ".", DEFAULTS.auditFile)), onError: io.err });
  log.event("approval.decided", { callId: null, skill: a.skill, caller: a.caller, trust: null, session: null, approvalId: a.id, decision: a.status, by: a.decidedBy, reason: a.reason ?? null });
  log.flushSyncForCli();
  io.out(
    `${a.status === "approved" ? "✔ approved" : "✖ denied"} ${a.id}: ${a.skill} for ${a.caller}${a.reason ? ` (${a.reason})` : ""}; ${a.mode === "single-use" ? "one call" : "calls"} until ${a.expiresAt}`,
  );
  return 0;
}

export async function cmdPolicy(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(args, { state: { type: "string" }, workspace: { type: "string" }, skills: { type: "string" }, json: { type: "boolean" } }, "policy");
  const [sub, a, b] = positionals;
  if (sub === "versions") {
    return withState(values, "policy versions", io, async (store) => {
      const list = await store.listPolicyVersions();
      if (values.json) io.out(JSON.stringify(list.map(({ document: _d, ...v }) => v)));
      else if (list.length === 0) io.out(`no policy versions recorded in ${store.location}`);
      else
        for (const l of table(
          ["version", "hash", "loaded", "by", "source"],
          list.map((v) => [v.version, v.hash.slice(0, 12), v.loadedAt.slice(0, 19), v.loadedBy, v.source]),
        ))
          io.out(l);
      return 0;
    });
  }
  if (sub === "test") {
    const file = a ?? (existsSync("skillbox.policy.yaml") ? "skillbox.policy.yaml" : undefined);
    if (!file) throw new UsageError("skillbox policy test: which policy file? (no skillbox.policy.yaml here)");
    const policy = loadPolicyFile(resolve(file));
    const skills = new Map<string, ReturnType<typeof loadSkillDir>>();
    for (const dir of listSkillDirs(resolve(values.skills ?? "skills"))) {
      try {
        const s = loadSkillDir(dir);
        skills.set(s.manifest.name, s);
      } catch (err) {
        io.err(`skipped ${dir}: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    const workspace = resolve(values.workspace ?? ".");
    const results = runExpectations(policy, (n) => skills.get(n), { workspace, home: process.env["HOME"] ?? "/" });
    if (values.json) io.out(JSON.stringify(results));
    else {
      if (results.length === 0) io.out(`${file} has no expect: cases`);
      for (const r of results) io.out(`${r.skipped ? "○" : r.ok ? "✔" : "✖"} expect[${r.index}] ${describeExpect(r)}`);
      const skipped = results.filter((r) => r.skipped).length;
      io.out(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok && !r.skipped).length} failed${skipped ? `, ${skipped} skipped` : ""}`);
    }
    return results.every((r) => r.ok || r.skipped) ? 0 : 2;
  }
  if (sub === "diff") {
    if (!a || !b) throw new UsageError("skillbox policy diff A B: give two policy files or versions");
    const [pa, pb] = (await versionsFor([a, b], values, io)) as [Policy, Policy];
    const lines = diffPolicies(pa, pb);
    if (values.json) io.out(JSON.stringify(lines));
    else {
      io.out(`${pa.version} → ${pb.version}: ${lines.length} change(s), ${lines.filter((l) => l.effect === "widened").length} widening access`);
      for (const l of lines)
        io.out(
          `${l.effect === "widened" ? "! widened " : l.effect === "narrowed" ? "  narrowed" : "  changed "}  ${l.change === "added" ? "+" : l.change === "removed" ? "-" : "~"} ${l.where}: ${l.detail}`,
        );
    }
    return 0;
  }
  throw new UsageError(`skillbox policy: expected test, diff or versions, got ${sub === undefined ? "nothing" : `"${sub}"`}`);
}

/** Policy files, "built-in", or versions recorded in the state store (a prefix of the version or of its hash). */
async function versionsFor(refs: string[], v: { state?: string | undefined; workspace?: string | undefined }, io: Out): Promise<Policy[]> {
  const fromFile = (ref: string) => (ref === "built-in" ? builtinPolicy() : existsSync(ref) ? loadPolicyFile(resolve(ref)) : undefined);
  if (refs.every((r) => fromFile(r) !== undefined)) return refs.map((r) => fromFile(r)!);
  return withState(v, "policy diff", io, async (store) => {
    const versions = await store.listPolicyVersions();
    return refs.map((ref) => fromFile(ref) ?? parsePolicy(pickVersion(ref, versions, store.location).document, `${ref} (state store)`));
  });
}

function pickVersion(ref: string, versions: PolicyVersion[], where: string): PolicyVersion {
  const found = versions.filter((x) => x.version === ref || x.hash === ref);
  const byPrefix = found.length > 0 ? found : versions.filter((x) => x.version.startsWith(ref) || x.hash.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  throw new UsageError(
    byPrefix.length > 1
      ? `"${ref}" matches several recorded policy versions: ${byPrefix.map((x) => x.version).join(", ")}`
      : `"${ref}" is neither a file nor a policy version recorded in ${where} (skillbox policy versions lists them)`,
  );
}

export function cmdSign(args: string[], io: Out): number {
  const { values, positionals } = parse(args, { key: { type: "string" }, "key-id": { type: "string" } }, "sign");
  const [dir] = positionals;
  if (!dir) throw new UsageError("skillbox sign: which skill folder?");
  if (!existsSync(join(dir, MANIFEST_FILE))) throw new UsageError(`skillbox sign: ${dir} has no ${MANIFEST_FILE}`);
  let keyText: string;
  if (values.key !== undefined) {
    try {
      keyText = readFileSync(values.key, "utf8");
    } catch (err) {
      throw new UsageError(`skillbox sign: cannot read --key ${values.key}: ${(err as NodeJS.ErrnoException).code}`);
    }
  } else if (process.env["SKILLBOX_SIGNING_KEY"]) keyText = process.env["SKILLBOX_SIGNING_KEY"];
  else throw new UsageError("skillbox sign: give --key FILE (an Ed25519 private key from `skillbox keygen`, or a shared secret), or set SKILLBOX_SIGNING_KEY");
  let key;
  try {
    key = parseSigningKey(keyText, values["key-id"]);
  } catch (err) {
    throw new UsageError(`skillbox sign: ${(err as Error).message}`);
  }
  const skill = loadSkillDir(dir);
  const sig = signSkill(skill.manifestText!, skill.files, key);
  writeFileSync(join(skill.dir, SIGNATURE_FILE), JSON.stringify(sig, null, 2) + "\n");
  io.out(`✔ signed ${skill.manifest.name} ${skill.manifest.version} (${Object.keys(sig.files).length} files) with ${sig.alg} key "${sig.keyId}" → ${join(skill.dir, SIGNATURE_FILE)}`);
  return 0;
}

export function cmdKeygen(args: string[], io: Out): number {
  const { positionals } = parse(args, {}, "keygen");
  const [file] = positionals;
  if (!file) throw new UsageError("skillbox keygen FILE: where to write the private key?");
  if (existsSync(file)) throw new UsageError(`skillbox keygen: ${file} exists; not overwriting a key`);
  const { privatePem, publicSpki } = generateSigningKey();
  writeFileSync(file, privatePem, { mode: 0o600 });
  io.out(`private key written to ${file} (keep it secret; sign with \`skillbox sign DIR --key ${file}\`)`);
  io.out("public key for the policy:");
  io.out(`signing:\n  keys:\n    release: "${publicSpki}"`);
  return 0;
}
