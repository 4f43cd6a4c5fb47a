import type { ArgPattern, FileAccess, Manifest, NetworkRule, ProcessRule } from "../manifest/schema.js";
import { expandVars, type PathVars } from "../util/vars.js";
import type { AuthorizeResult, Policy, TrustLevel, UncoveredNeed } from "./model.js";
import { EMPTY_CONTROL_PLANE, type ControlPlane } from "./control-plane.js";
import { networkCovers, normalizeHost } from "./network.js";
import { describeProcessRule, isRegexPattern } from "./process.js";
import { compileFileRule, compileGlob, denyCoversNeed, globCovers, TMP_PLACEHOLDER, type CompiledFileRule } from "./match.js";

export type { AuthorizeResult, Grant, UncoveredNeed } from "./model.js";

export interface AuthorizeContext {
  trust: TrustLevel;
  policy: Policy;
  /** workspace and home (real paths); `skill` is the skill's real folder */
  vars: PathVars;
  /** the host's control plane; @default none (pure policy tooling such as self-tests) */
  controlPlane?: ControlPlane;
}

/**
 * Pure: decides whether `manifest` may run for a caller of `ctx.trust`. Returns the Grant, or
 * every uncovered need at once. Nothing runs, nothing is read from disk.
 */
export function authorize(manifest: Manifest, ctx: AuthorizeContext): AuthorizeResult {
  const { trust, policy } = ctx;
  const ceiling = policy.ceilings[trust];
  const vars: PathVars = { ...ctx.vars, tmp: TMP_PLACEHOLDER };
  const needs: UncoveredNeed[] = [];
  const level = `trust level "${trust}"`;

  const ceilingFiles = ceiling.files.map((r) => compileFileRule(r.path, expandVars(r.path, { ...vars, tmp: "/nonexistent-tmp" }), r.access));
  const denyFiles = policy.deny.files.map((p) => ({ pattern: p, test: compileGlob(expandVars(p, vars)) }));

  const files: CompiledFileRule[] = [];
  for (const rule of manifest.permissions.files) {
    const pattern = expandVars(rule.path, vars);
    const inTmp = pattern === TMP_PLACEHOLDER || pattern.startsWith(TMP_PLACEHOLDER + "/");
    for (const access of rule.access) {
      const deny = denyFiles.find((d) => denyCoversNeed(d.test, pattern));
      if (deny) {
        needs.push({ kind: "files", target: rule.path, access, reason: `matches deny rule "${deny.pattern}", which no trust level overrides` });
        continue;
      }
      if (inTmp) continue; // ${tmp} is private to the call: granted at every level
      if (!ceilingFiles.some((c) => c.access.has(access) && globCovers(c.pattern, pattern))) {
        needs.push({ kind: "files", target: rule.path, access, reason: `${level} allows ${describeCeilingFiles(ceiling.files, access)}` });
      }
    }
    files.push(compileFileRule(rule.path, pattern, rule.access));
  }

  for (const rule of manifest.permissions.network) {
    const host = normalizeHost(rule.host);
    const deny = policy.deny.network.find((d) => normalizeHost(d) === host);
    if (deny) {
      needs.push({ kind: "network", target: rule.host, reason: `matches deny rule "${deny}", which no trust level overrides` });
    } else if (!ceiling.network.some((c) => networkCovers(c, rule))) {
      needs.push({ kind: "network", target: describeNetwork(rule), reason: `${level} allows ${ceiling.network.length ? ceiling.network.map(describeNetwork).join(", ") : "no network access"}` });
    }
  }

  for (const rule of manifest.permissions.process) {
    if (!ceiling.process.some((c) => processCovers(c, rule, vars))) {
      const same = ceiling.process.filter((c) => c.command === rule.command);
      const why = same.length
        ? `only ${same.map(describeProcessRule).join("; ")}${rule.network ? " (network only where a rule says network: true)" : ""}`
        : ceiling.process.length
          ? "only " + ceiling.process.map((c) => c.command).join(", ")
          : "no processes";
      needs.push({ kind: "process", target: describeProcessRule(rule), reason: `${level} allows ${why}` });
    }
  }

  const lim = manifest.limits;
  for (const key of ["memoryMb", "timeoutMs", "outputBytes"] as const) {
    const want = lim[key];
    if (want !== undefined && want > ceiling.limits[key]) {
      needs.push({ kind: "limits", target: `${key}: ${want}`, reason: `${level} allows at most ${key}: ${ceiling.limits[key]}` });
    }
  }

  if (needs.length > 0) return { ok: false, needs };
  return {
    ok: true,
    grant: {
      skill: manifest.name,
      trust,
      policyVersion: policy.version,
      files,
      ceilingFiles,
      denyFiles,
      network: manifest.permissions.network,
      ceilingNetwork: ceiling.network,
      denyNetwork: policy.deny.network.map(normalizeHost),
      process: manifest.permissions.process,
      ceilingProcess: ceiling.process,
      binPath: policy.binPath,
      sandbox: policy.process.sandbox,
      controlPlane: ctx.controlPlane ?? EMPTY_CONTROL_PLANE,
      vars: { ...ctx.vars },
      limits: {
        memoryMb: lim.memoryMb ?? ceiling.limits.memoryMb,
        timeoutMs: lim.timeoutMs ?? ceiling.limits.timeoutMs,
        outputBytes: lim.outputBytes ?? ceiling.limits.outputBytes,
      },
    },
  };
}

/** "skill needs read access to X, which trust level "u" does not allow (reason)". */
export function describeNeeds(skill: string, trust: TrustLevel, needs: UncoveredNeed[]): string {
  const lines = needs.map((n) => {
    const what = n.kind === "files" ? `${n.access} access to ${n.target}` : n.kind === "network" ? `network access to ${n.target}` : n.kind === "process" ? `to run ${n.target}` : n.target;
    return `${skill} needs ${what}, which trust level "${trust}" does not allow (${n.reason})`;
  });
  return lines.join("\n");
}

function describeCeilingFiles(rules: { path: string; access: FileAccess[] }[], access: FileAccess): string {
  const withAccess = rules.filter((r) => r.access.includes(access));
  return withAccess.length ? `${access} only under ${withAccess.map((r) => r.path).join(", ")}` : `no ${access} access to files`;
}

function describeNetwork(r: NetworkRule): string {
  return `${r.scheme ?? "https"}://${r.host}${r.port ? ":" + r.port : ""}${r.methods ? " [" + r.methods.join(",") + "]" : ""}`;
}

const ANY_ARG = new Set(["**", "/.*/", "/^.*$/", "/[^]*/", "/^[^]*$/"]);

/** Whether a ceiling argument pattern allows everything a needed one does (conservative: unsure means no). */
function argCovers(c: ArgPattern, n: ArgPattern, vars: PathVars): boolean {
  if (typeof c === "string" && ANY_ARG.has(c)) return true;
  if (typeof c === "string" && typeof n === "string") {
    if (c === n) return true;
    // `*` takes any argument without a `/`: a literal or a glob whose wildcards cannot produce one
    return c === "*" && !isRegexPattern(n) && !n.includes("/") && !n.includes("**") && !n.includes("${");
  }
  if (typeof c === "object" && typeof n === "object") {
    if (!n.access.every((a) => c.access.includes(a))) return false;
    try {
      const v = { ...vars, tmp: TMP_PLACEHOLDER };
      return globCovers(expandVars(c.path, v), expandVars(n.path, v));
    } catch {
      return false;
    }
  }
  return false;
}

export function processCovers(c: ProcessRule, n: ProcessRule, vars: PathVars = { workspace: "/nonexistent-workspace", home: "/nonexistent-home" }): boolean {
  if (c.command !== n.command) return false;
  if (n.network === true && c.network !== true) return false;
  const cArgs = c.args ?? [];
  return (n.args ?? []).every((a) => cArgs.some((x) => argCovers(x, a, vars)));
}
