// `skillbox validate` (a linter for skill folders and policy files) and `skillbox policy show`.
import { existsSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, posix, resolve } from "node:path";
import ivm from "isolated-vm";
import { formatIssue, SkillError, ValidationError, type Issue } from "../errors.js";
import { listSkillDirs, loadSkillDir, MANIFEST_FILE } from "../manifest/load.js";
import type { LoadedSkill } from "../manifest/model.js";
import { authorize } from "../policy/authorize.js";
import { builtinPolicy, loadPolicyFile } from "../policy/load.js";
import type { Ceiling, Policy } from "../policy/model.js";
import { DEFAULT_CEILINGS, TRUST_LEVELS, type TrustLevel } from "../policy/trust.js";
import { isObjectSchema } from "../tools.js";
import { didYouMean, parse, trustFlag, UsageError, type Out } from "./common.js";

const POLICY_FILES = ["skillbox.policy.yaml", "skillbox.policy.toml"];

interface Result {
  path: string;
  ok: boolean;
  kind: "skill" | "policy" | "?";
  summary?: string;
  /** trust levels that may run the skill under the policy in force */
  allowedAt?: TrustLevel[];
  issues: Issue[];
  /** not errors: things worth knowing (an output schema MCP shows wrapped) */
  notes: string[];
}

/** The policy to judge skills by: --policy, a policy file among the paths, the workspace's, or built-in. */
function policyFor(values: { policy?: string | undefined }, paths: string[], workspace: string): Policy {
  const given = values.policy ?? paths.find((p) => /\.(ya?ml|toml)$/i.test(p) && basename(p) !== MANIFEST_FILE && existsSync(p) && statSync(p).isFile());
  if (given !== undefined) {
    try {
      return loadPolicyFile(resolve(given));
    } catch {
      return builtinPolicy(); // reported as its own result below
    }
  }
  const implicit = POLICY_FILES.map((f) => join(workspace, f)).find((f) => existsSync(f));
  return implicit ? loadPolicyFile(implicit) : builtinPolicy();
}

export function cmdValidate(args: string[], io: Out): number {
  const { values, positionals } = parse(args, { json: { type: "boolean" }, policy: { type: "string" }, workspace: { type: "string" } }, "validate");
  const workspace = realOrResolved(values.workspace ?? ".");
  const paths = positionals.length > 0 ? positionals : ["skills", ...POLICY_FILES.filter((f) => existsSync(f))];
  const results: Result[] = [];
  let policy: Policy;
  try {
    policy = policyFor(values, paths, workspace);
  } catch (err) {
    // The workspace's own policy is broken: say so once, judge skills by the built-in one.
    results.push(failure(values.policy ?? "skillbox.policy", "policy", err));
    policy = builtinPolicy();
  }
  const vars = { workspace, home: realOrResolved(homedir()) };

  // Every skill folder named, and their siblings (a fallback may name one of them).
  const skillDirs: string[] = [];
  for (const p of paths) {
    const full = resolve(p);
    if (!existsSync(full)) results.push({ path: p, ok: false, kind: "?", issues: [{ file: p, field: "", message: "no such file or folder" }], notes: [] });
    else if (statSync(full).isDirectory()) {
      if (existsSync(join(full, MANIFEST_FILE))) skillDirs.push(full);
      else {
        const dirs = listSkillDirs(full);
        if (dirs.length === 0) results.push({ path: p, ok: false, kind: "?", issues: [{ file: p, field: "", message: `no skill folders (with ${MANIFEST_FILE}) here` }], notes: [] });
        skillDirs.push(...dirs);
      }
    } else if (basename(full) === MANIFEST_FILE) skillDirs.push(resolve(full, ".."));
    else {
      try {
        const p2 = loadPolicyFile(full);
        const rules = p2.rules;
        const count = rules.rateLimits.length + rules.windows.length + rules.filters.rules.length + rules.approvals.length + rules.expect.length;
        results.push({
          path: p,
          ok: true,
          kind: "policy",
          summary: `policy ${p2.version}, ${count} engine rule(s), ${p2.deny.files.length + p2.deny.network.length} deny rule(s)`,
          issues: [],
          notes: [],
        });
      } catch (err) {
        results.push(failure(p, "policy", err));
      }
    }
  }
  const known = new Set<string>();
  for (const d of new Set(skillDirs.flatMap((d) => [d, ...listSkillDirs(resolve(d, ".."))]))) {
    try {
      known.add(loadSkillDir(d).manifest.name);
    } catch {
      known.add(basename(d));
    }
  }

  for (const dir of skillDirs) {
    const shown = relativeOrAbsolute(dir);
    let skill: LoadedSkill;
    try {
      skill = loadSkillDir(dir);
    } catch (err) {
      results.push(failure(shown, "skill", err));
      continue;
    }
    const file = join(dir, MANIFEST_FILE);
    const issues = lintSkill(skill, file, known);
    const notes: string[] = [];
    if (skill.manifest.output !== undefined && !isObjectSchema(skill.manifest.output)) notes.push("output is not `type: object`: MCP clients see the result wrapped as { result: … }");
    const allowedAt = TRUST_LEVELS.filter((trust) => authorize(skill.manifest, { trust, policy, vars: { ...vars, skill: dir } }).ok);
    const m = skill.manifest;
    results.push({
      path: shown,
      ok: issues.length === 0,
      kind: "skill",
      summary: `${m.name} ${m.version}, entry sha256 ${skill.entrySha256.slice(0, 12)}…; runs at: ${allowedAt.length ? allowedAt.join(", ") : "no trust level under " + (policy.source === "built-in" ? "the built-in policy" : policy.source)}`,
      allowedAt,
      issues,
      notes,
    });
  }

  if (values.json) io.out(JSON.stringify(results));
  else {
    for (const r of results) {
      io.out(r.ok ? `✔ ${r.path}: ${r.summary}` : `✖ ${r.path}${r.summary ? `: ${r.summary}` : ""}`);
      for (const i of r.issues) io.out(`    ${formatIssue(i)}`);
      for (const n of r.notes) io.out(`    note: ${n}`);
    }
  }
  return results.every((r) => r.ok) ? 0 : 2;
}

function failure(path: string, kind: Result["kind"], err: unknown): Result {
  const issues = err instanceof ValidationError ? err.issues : [{ file: path, field: "", message: err instanceof SkillError ? `${err.code}: ${err.message}` : (err as Error).message }];
  return { path, ok: false, kind, issues, notes: [] };
}

/** Problems that would stop a skill from running although its manifest parses. */
export function lintSkill(skill: LoadedSkill, file: string, knownSkills: ReadonlySet<string>): Issue[] {
  const m = skill.manifest;
  const issues: Issue[] = [];
  const folder = basename(skill.dir);
  if (folder !== m.name) issues.push({ file, field: "name", message: `"${m.name}" differs from its folder name "${folder}": rename the folder or the skill so they match` });
  for (const [where, schema] of [
    ["input", m.input],
    ["output", m.output],
  ] as const) {
    if (schema !== undefined) issues.push(...schemaTypeIssues(schema, where, file));
  }
  if (m.fallback && "skill" in m.fallback && !knownSkills.has(m.fallback.skill)) {
    issues.push({ file, field: "fallback.skill", message: `no skill named "${m.fallback.skill}" next to this one${didYouMean(m.fallback.skill, [...knownSkills])}` });
  }
  issues.push(...moduleIssues(skill, file));
  return issues;
}

const JSON_TYPES = ["string", "number", "integer", "boolean", "object", "array", "null"];

/** `type: strng` and friends, anywhere in a schema (bounded depth: schemas are small). */
function schemaTypeIssues(schema: unknown, path: string, file: string, depth = 0): Issue[] {
  if (depth > 32 || schema === null || typeof schema !== "object") return [];
  const out: Issue[] = [];
  const s = schema as Record<string, unknown>;
  const types = typeof s["type"] === "string" ? [s["type"]] : Array.isArray(s["type"]) ? s["type"] : [];
  for (const t of types) {
    if (typeof t !== "string" || !JSON_TYPES.includes(t))
      out.push({ file, field: `${path}.type`, message: `unknown JSON Schema type ${JSON.stringify(t)}${typeof t === "string" ? didYouMean(t, JSON_TYPES) : ""}; one of ${JSON_TYPES.join(", ")}` });
  }
  for (const [k, v] of Object.entries(s)) {
    if (k === "properties" || k === "$defs" || k === "definitions" || k === "patternProperties") {
      if (v && typeof v === "object") for (const [name, sub] of Object.entries(v)) out.push(...schemaTypeIssues(sub, `${path}.${k}.${name}`, file, depth + 1));
    } else if (k === "items" || k === "additionalProperties" || k === "not" || k === "contains") out.push(...schemaTypeIssues(v, `${path}.${k}`, file, depth + 1));
    else if ((k === "anyOf" || k === "oneOf" || k === "allOf" || k === "prefixItems") && Array.isArray(v))
      v.forEach((sub, i) => out.push(...schemaTypeIssues(sub, `${path}.${k}[${i}]`, file, depth + 1)));
  }
  return out;
}

/**
 * Compiles the entry and every module it imports in a throwaway isolate (no skill code runs):
 * syntax errors, imports of built-ins or packages, imports outside the folder or of missing
 * files, and an entry without a default export.
 */
function moduleIssues(skill: LoadedSkill, file: string): Issue[] {
  const issues: Issue[] = [];
  const entry = skill.manifest.entry;
  const entryFile = join(skill.dir, entry);
  if (!skill.files.has(entry)) return [{ file, field: "entry", message: `no module ${entry} in the skill folder` }];
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const seen = new Set<string>();
    const queue = [entry];
    while (queue.length > 0 && seen.size < 256) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const source = skill.files.get(path)!;
      let mod: ivm.Module;
      try {
        mod = isolate.compileModuleSync(source, { filename: `skill:///${skill.manifest.name}/${path}` });
      } catch (err) {
        const message = (err as Error).message;
        const line = /:(\d+):\d+\]$/.exec(message)?.[1];
        issues.push({
          file: join(skill.dir, path),
          field: path === entry ? "entry" : "import",
          message: `${(err as Error).name ?? "SyntaxError"}: ${message.replace(/ \[skill:\/\/\/.*\]$/, "")}`,
          ...(line ? { line: Number(line) } : {}),
        });
        continue;
      }
      for (const spec of mod.dependencySpecifiers) {
        const target = resolveImport(spec, path);
        if (typeof target !== "string") issues.push({ file: join(skill.dir, path), field: "import", message: `import "${spec}": ${target.why}` });
        else if (!skill.files.has(target))
          issues.push({ file: join(skill.dir, path), field: "import", message: `import "${spec}": no module ${target} in the skill folder${didYouMean(target, [...skill.files.keys()])}` });
        else queue.push(target);
      }
      mod.release();
    }
  } finally {
    isolate.dispose();
  }
  const source = skill.files.get(entry) ?? "";
  if (!/\bexport\s+default\b|\bexport\s*\{[^}]*\bdefault\b[^}]*\}|\bas\s+default\b/.test(source)) {
    issues.push({ file: entryFile, field: "entry", message: "no default export: a skill's entry must `export default async function (input, ctx) { … }`" });
  }
  return issues;
}

/** Where an import points, relative to the skill folder; or why it can never load there. */
function resolveImport(spec: string, from: string): string | { why: string } {
  if (spec.startsWith("node:") || /^[a-z_]+$/.test(spec)) return { why: "Node built-ins are not available in a skill (the sandbox has no process, fs or network; use ctx.fs, ctx.fetch, ctx.exec)" };
  if (!spec.startsWith("./") && !spec.startsWith("../")) return { why: "packages and absolute paths cannot be imported; only relative modules inside the skill's own folder" };
  const target = posix.normalize(posix.join(posix.dirname(from), spec));
  if (target.startsWith("../") || target === "..") return { why: "points outside the skill's folder; only modules inside it can be imported" };
  return target;
}

/** `skillbox policy show [--trust L]`: the ceilings each level gets once the policy file is merged with the built-in ones. */
export function cmdPolicyShow(args: string[], io: Out): number {
  const { values } = parse(args, { trust: { type: "string" }, policy: { type: "string" }, workspace: { type: "string" }, json: { type: "boolean" } }, "policy show");
  const workspace = realOrResolved(values.workspace ?? ".");
  const levels = values.trust !== undefined ? [trustFlag(values.trust, TRUST_LEVELS) as TrustLevel] : [...TRUST_LEVELS];
  let policy: Policy;
  if (values.policy !== undefined) {
    if (!existsSync(values.policy)) throw new UsageError(`skillbox policy show: --policy ${values.policy}: no such file`, "E_POLICY_INVALID");
    policy = loadPolicyFile(resolve(values.policy));
  } else {
    const implicit = POLICY_FILES.map((f) => join(workspace, f)).find((f) => existsSync(f));
    policy = implicit ? loadPolicyFile(implicit) : builtinPolicy();
  }
  if (values.json) {
    io.out(JSON.stringify({ source: policy.source, version: policy.version, ceilings: Object.fromEntries(levels.map((l) => [l, policy.ceilings[l]])), deny: policy.deny, binPath: policy.binPath }));
    return 0;
  }
  io.out(`policy: ${policy.source === "built-in" ? "built-in (no skillbox.policy.yaml or .toml in the workspace)" : `${policy.source} (${policy.version})`}`);
  for (const level of levels) {
    const c = policy.ceilings[level];
    const d = DEFAULT_CEILINGS[level];
    const from = (section: keyof Ceiling) => (JSON.stringify(c[section]) === JSON.stringify(d[section]) ? "built-in" : "policy file");
    io.out(`\n${level}`);
    io.out(`  files    [${from("files")}]  ${c.files.length ? c.files.map((r) => `${r.path} (${r.access.join(", ")})`).join("; ") : "none"}`);
    io.out(
      `  network  [${from("network")}]  ${c.network.length ? c.network.map((r) => `${r.scheme ?? "https"}://${r.host}${r.port ? `:${r.port}` : ""}${r.methods ? ` (${r.methods.join(", ")})` : ""}`).join("; ") : "none"}`,
    );
    io.out(
      `  process  [${from("process")}]  ${c.process.length ? c.process.map((r) => [r.command, ...(r.args ?? []).map((a) => (typeof a === "string" ? a : JSON.stringify(a)))].join(" ")).join("; ") : "none"}`,
    );
    io.out(`  limits   [${from("limits")}]  memoryMb ${c.limits.memoryMb}, timeoutMs ${c.limits.timeoutMs}, outputBytes ${c.limits.outputBytes}`);
  }
  io.out(`\ndeny (every level, no policy overrides them)`);
  io.out(`  files    ${policy.deny.files.join(", ")}`);
  io.out(`  network  ${policy.deny.network.join(", ")}`);
  io.out(`\nA level in the policy file replaces each section it names (files, network, process) and merges limits key by key;`);
  io.out(`sections it leaves out keep the built-in value above.`);
  return 0;
}

function realOrResolved(p: string): string {
  try {
    return realpathSync.native(resolve(p));
  } catch {
    return resolve(p);
  }
}

function relativeOrAbsolute(dir: string): string {
  const cwd = process.cwd();
  return dir.startsWith(cwd + "/") ? dir.slice(cwd.length + 1) : dir;
}
