import { posix } from "node:path";
import type { ArgPattern, FileAccess, ProcessRule } from "../manifest/schema.js";
import { expandVars, type PathVars } from "../util/vars.js";
import type { Grant } from "./model.js";
import { compile, type LinearRegex } from "../util/regex.js";
import { checkPathAgainst } from "./check.js";
import { compileFileRule, TMP_PLACEHOLDER } from "./match.js";

/** Where a process runs, for resolving its path arguments. */
export interface ArgContext {
  /** the call's private temporary folder (real path) */
  tmpDir: string;
  /** resolves an argument as a path: against the process's working folder, normalized, symlink-resolved */
  resolvePath(arg: string): { lexical: string; real: string };
}

/** A path argument that was allowed, with the access its pattern declares (what a confinement must show). */
export interface PathArgument {
  arg: string;
  real: string;
  access: readonly FileAccess[];
}

export type ProcessDecision = { allowed: true; rule: string; network: boolean; paths: PathArgument[] } | { allowed: false; rule: string; reason: string };

const VAR = /\$\{([a-z]+)\}/g;
const cache = new Map<string, LinearRegex>();
const MAX_CACHE = 2000;

function varValue(name: string, vars: PathVars): string {
  const v = (vars as unknown as Record<string, string | undefined>)[name];
  if (v === undefined) throw new Error(`unknown or unavailable variable \${${name}}`);
  return v;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** Splits a pattern on its variables: literal pieces are compiled by `piece`, variable values always literally. */
function compileWithVars(pattern: string, vars: PathVars, piece: (literal: string) => string): string {
  let out = "";
  let last = 0;
  for (const m of pattern.matchAll(VAR)) {
    out += piece(pattern.slice(last, m.index)) + escapeRe(varValue(m[1]!, vars));
    last = m.index + m[0].length;
  }
  return out + piece(pattern.slice(last));
}

/** Glob piece: `**` any run of characters, `*` any run without `/`, `?` one character other than `/`. */
function globPiece(literal: string): string {
  let out = "";
  for (let i = 0; i < literal.length; i++) {
    const c = literal[i]!;
    if (c === "*" && literal[i + 1] === "*") {
      out += "[^]*";
      i++;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += escapeRe(c);
  }
  return out;
}

export function isRegexPattern(pattern: string): boolean {
  return pattern.length >= 2 && pattern.startsWith("/") && pattern.endsWith("/");
}

/**
 * A string argument pattern, variables expanded: `/regex/` as written (variable values inserted
 * literally), or a glob over the whole argument.
 */
export function argPattern(pattern: string, vars: PathVars): LinearRegex {
  const key = `${pattern}\0${vars.workspace}\0${vars.home}\0${vars.skill ?? ""}\0${vars.tmp ?? ""}`;
  let re = cache.get(key);
  if (!re) {
    // linear-time matching: an argument pattern never freezes the host, whatever the argument
    re = isRegexPattern(pattern)
      ? compile(
          compileWithVars(pattern.slice(1, -1), vars, (s) => s),
          "u",
        )
      : compile("^" + compileWithVars(pattern, vars, globPiece) + "$", "su");
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(key, re);
  }
  return re;
}

function hasDotDot(arg: string): boolean {
  return arg.split("/").includes("..");
}

type ArgMatch = { ok: true; path?: PathArgument } | { ok: false };

/**
 * Characters of argument text one decision may run through patterns (every rule, every pattern
 * tried, declared and ceiling). Matching is linear but not free (the linear engine is pure
 * JavaScript, on the host's main thread): 256 arguments of 64 KB against a glob took about 2 s
 * per rule, and a skill can start 16 such execs at once. About 0.1 s of matching at most.
 */
export const MAX_ARG_MATCH_CHARS = 1024 * 1024;

/** What one decision may still spend on matching arguments; shared by every rule it tries. */
export interface ArgMatchBudget {
  charsLeft: number;
}

class ArgBudgetSpent extends Error {}

function spendOn(budget: ArgMatchBudget | undefined, chars: number): void {
  if (!budget) return;
  budget.charsLeft -= chars;
  if (budget.charsLeft < 0) throw new ArgBudgetSpent();
}

/** Whether one argument matches one pattern; a path pattern checks the path like a ctx.fs access. */
function matchArg(grant: Grant, pattern: ArgPattern, arg: string, ctx: ArgContext, budget?: ArgMatchBudget): ArgMatch {
  const vars: PathVars = { ...grant.vars, tmp: ctx.tmpDir };
  spendOn(budget, arg.length + 1);
  if (typeof pattern === "string") {
    if (!isRegexPattern(pattern) && hasDotDot(arg)) return { ok: false };
    try {
      return { ok: argPattern(pattern, vars).test(arg) };
    } catch {
      return { ok: false };
    }
  }
  // An option ("-x", "--out=...") is never a path argument: the command would read it as an option.
  if (arg.length === 0 || arg.startsWith("-")) return { ok: false };
  let rule;
  try {
    // compiled against the placeholder root, like the manifest's own file rules (see TMP_PLACEHOLDER)
    rule = compileFileRule(pattern.path, expandVars(pattern.path, { ...grant.vars, tmp: TMP_PLACEHOLDER }), pattern.access);
  } catch {
    return { ok: false };
  }
  const { lexical, real } = ctx.resolvePath(arg);
  for (const access of pattern.access) {
    if (!checkPathAgainst(grant, [rule], real, access, ctx.tmpDir, lexical).allowed) return { ok: false };
  }
  return { ok: true, path: { arg, real, access: pattern.access } };
}

/** Whether a rule allows this command with exactly these arguments (each must match one pattern; no patterns: no arguments). */
export function processRuleAllows(
  grant: Grant,
  rule: ProcessRule,
  command: string,
  args: readonly string[],
  ctx: ArgContext,
  budget?: ArgMatchBudget,
): { ok: true; paths: PathArgument[] } | { ok: false; badArg?: string } {
  if (rule.command !== command) return { ok: false };
  const paths: PathArgument[] = [];
  for (const a of args) {
    let matched: ArgMatch = { ok: false };
    for (const p of rule.args ?? []) {
      matched = matchArg(grant, p, a, ctx, budget);
      if (matched.ok) break;
    }
    if (!matched.ok) return { ok: false, badArg: a };
    if (matched.path) paths.push(matched.path);
  }
  return { ok: true, paths };
}

/** Resolution without touching the disk (policy self-tests): lexical only, against the workspace. */
function lexicalContext(grant: Grant): ArgContext {
  return {
    tmpDir: "/nonexistent-skillbox-tmp",
    resolvePath: (arg) => {
      const p = posix.resolve(grant.vars.workspace, arg);
      return { lexical: p, real: p };
    },
  };
}

export function describeArgPattern(p: ArgPattern): string {
  return typeof p === "string" ? p : `{path: ${p.path}, access: [${p.access.join(",")}]}`;
}

export function describeProcessRule(r: ProcessRule): string {
  return [r.command, ...(r.args ?? []).map(describeArgPattern)].join(" ");
}

/**
 * May this grant run `command args`? Declared rules first, then the trust level's ceiling; path
 * arguments are checked like ctx.fs accesses (control plane, deny rules, declared, ceiling).
 * The network is allowed only when the declared rule and a ceiling rule allowing the run both say so.
 */
export function checkProcess(grant: Grant, command: string, args: readonly string[], ctx: ArgContext = lexicalContext(grant)): ProcessDecision {
  const budget: ArgMatchBudget = { charsLeft: MAX_ARG_MATCH_CHARS };
  try {
    return decideProcess(grant, command, args, ctx, budget);
  } catch (err) {
    if (!(err instanceof ArgBudgetSpent)) throw err;
    const total = args.reduce((n, a) => n + a.length, 0);
    return {
      allowed: false,
      rule: "arguments",
      reason: `checking ${args.length} argument(s) of ${total} characters against the rules for ${command} takes more than ${MAX_ARG_MATCH_CHARS} characters of matching; pass large data on stdin or in a file`,
    };
  }
}

function decideProcess(grant: Grant, command: string, args: readonly string[], ctx: ArgContext, budget: ArgMatchBudget): ProcessDecision {
  let declared: ProcessRule | undefined;
  let paths: PathArgument[] = [];
  let badArg: string | undefined;
  for (const r of grant.process) {
    const m = processRuleAllows(grant, r, command, args, ctx, budget);
    if (m.ok) {
      declared = r;
      paths = m.paths;
      break;
    }
    badArg ??= m.badArg;
  }
  if (!declared) {
    const sameCommand = grant.process.some((r) => r.command === command);
    return {
      allowed: false,
      rule: "manifest",
      reason: sameCommand
        ? `argument ${JSON.stringify((badArg ?? "").slice(0, 200))} matches none of the patterns ${grant.skill} declares for ${command} (paths are checked like file accesses)`
        : `the manifest of ${grant.skill} declares no permission to run ${command}`,
    };
  }
  const ceilings = grant.ceilingProcess.filter((r) => processRuleAllows(grant, r, command, args, ctx, budget).ok);
  if (ceilings.length === 0) {
    return { allowed: false, rule: `ceiling:${grant.trust}`, reason: `trust level "${grant.trust}" does not allow running ${[command, ...args].join(" ").slice(0, 500)}` };
  }
  const network = declared.network === true && ceilings.some((r) => r.network === true);
  return { allowed: true, rule: describeProcessRule(declared), network, paths };
}
