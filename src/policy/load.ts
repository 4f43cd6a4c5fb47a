import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Issue, ValidationError } from "../errors.js";
import { zodIssues } from "../manifest/schema.js";
import { isTomlFile, parseTomlSafe } from "../util/toml.js";
import { parseYamlSafe } from "../util/yaml.js";
import type { Policy } from "./model.js";
import { policySchema } from "./schema.js";
import { DEFAULT_CEILINGS, DEFAULT_DENY, TRUST_LEVELS } from "./trust.js";

export const DEFAULT_BIN_PATH = ["/usr/local/bin", "/usr/bin", "/bin"];

export type { Policy, SandboxMode } from "./model.js";

/** Where the built-in defaults are reported when they fail their own schema. */
export const BUILTIN_SOURCE = "<built-in policy>";

/**
 * The built-in ceilings, deny rules and bin path, checked by the same schema (and the same
 * breadth rules) as a policy file. Empty when they are valid.
 */
export function builtinIssues(): Issue[] {
  const asFile = { version: 1, trust: DEFAULT_CEILINGS, deny: DEFAULT_DENY, binPath: DEFAULT_BIN_PATH };
  const result = policySchema.safeParse(structuredClone(asFile));
  return result.success ? [] : zodIssues(result.error, BUILTIN_SOURCE);
}

let builtinsChecked = false;

/** Refuses to start on built-in defaults that a policy file could not contain (checked once per process). */
function assertBuiltinsValid(): void {
  if (builtinsChecked) return;
  const issues = builtinIssues();
  if (issues.length > 0) throw new ValidationError("E_POLICY_INVALID", issues);
  builtinsChecked = true;
}

export function builtinPolicy(): Policy {
  assertBuiltinsValid();
  return {
    source: "built-in",
    version: "built-in",
    ceilings: structuredClone(DEFAULT_CEILINGS),
    deny: { files: [...DEFAULT_DENY.files], network: [...DEFAULT_DENY.network] },
    binPath: [...DEFAULT_BIN_PATH],
    process: { sandbox: "auto" },
    audit: { failMode: "open", redact: [] },
    rules: { rateLimits: [], concurrency: undefined, windows: [], filters: { presets: [], rules: [] }, approvals: [], signing: undefined, expect: [] },
    text: "",
  };
}

/**
 * Loads a policy file (YAML, or TOML for `*.toml`). A level overrides the built-in ceiling
 * section by section: each of `files`, `network`, `process` it gives replaces that section, the
 * sections it leaves out keep their built-in value, and `limits` merge key by key. Levels it does
 * not mention keep their built-in ceilings; deny rules add to the built-in ones.
 */
export function loadPolicyFile(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ValidationError("E_POLICY_INVALID", [{ file, field: "", message: `cannot read policy file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parsePolicy(text, file);
}

/**
 * Parses a policy from its text: TOML when the file name ends in `.toml`, YAML otherwise. Both
 * go through the same schema and report problems with the same file, field and line.
 */
export function parsePolicy(text: string, file: string): Policy {
  const parsed = isTomlFile(file) ? parseTomlSafe(text, file) : parseYamlSafe(text, file);
  if (!parsed.ok) throw new ValidationError("E_POLICY_INVALID", parsed.issues);
  const result = policySchema.safeParse(parsed.yaml.value ?? {});
  if (!result.success) throw new ValidationError("E_POLICY_INVALID", zodIssues(result.error, file, parsed.yaml.lineOf, policySchema));
  const p = result.data;
  const base = builtinPolicy();
  for (const level of TRUST_LEVELS) {
    const c = p.trust?.[level];
    if (!c) continue;
    const def = base.ceilings[level];
    base.ceilings[level] = {
      files: c.files ?? def.files,
      network: c.network ?? def.network,
      process: c.process ?? def.process,
      limits: { ...def.limits, ...stripUndefined(c.limits ?? {}) },
    };
  }
  base.deny.files.push(...(p.deny?.files ?? []));
  base.deny.network.push(...(p.deny?.network ?? []));
  if (p.binPath) base.binPath = p.binPath;
  base.process = { sandbox: p.process?.sandbox ?? "auto" };
  base.audit = {
    failMode: p.audit?.failMode ?? "open",
    redact: p.audit?.redact ?? [],
    ...(p.audit?.anchor !== undefined ? { anchor: resolve(dirname(file), p.audit.anchor) } : {}),
    ...(p.audit?.signingKey !== undefined ? { signingKey: resolve(dirname(file), p.audit.signingKey) } : {}),
    ...(p.audit?.checkpointEvery !== undefined ? { checkpointEvery: p.audit.checkpointEvery } : {}),
  };
  base.rules = {
    rateLimits: p.rateLimits ?? [],
    concurrency: p.concurrency,
    windows: p.windows ?? [],
    filters: { presets: p.filters?.presets ?? [], rules: p.filters?.rules ?? [] },
    approvals: p.approvals ?? [],
    signing: p.signing,
    expect: p.expect ?? [],
  };
  base.text = text;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 12);
  base.source = file;
  base.version = typeof p.version === "string" ? `${p.version}@${hash}` : hash;
  return base;
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
