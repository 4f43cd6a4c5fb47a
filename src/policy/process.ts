import type { ProcessRule } from "../manifest/schema.js";
import type { Decision, Grant } from "./model.js";

const cache = new Map<string, RegExp>();

/** An argument pattern: `/regex/` as written, or a glob where * is any run and ? any one character (whole argument). */
export function argPattern(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    if (pattern.length >= 2 && pattern.startsWith("/") && pattern.endsWith("/")) re = new RegExp(pattern.slice(1, -1), "u");
    else re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^]*").replace(/\?/g, "[^]") + "$", "u");
    cache.set(pattern, re);
  }
  return re;
}

/** Whether a rule allows this command with exactly these arguments (each must match one pattern; no patterns: no arguments). */
export function processRuleAllows(rule: ProcessRule, command: string, args: readonly string[]): boolean {
  if (rule.command !== command) return false;
  const patterns = (rule.args ?? []).map(argPattern);
  return args.every((a) => patterns.some((p) => p.test(a)));
}

/** Pure: may this grant run `command args`? Declared rules first, then the trust level's ceiling. */
export function checkProcess(grant: Grant, command: string, args: readonly string[]): Decision {
  const declared = grant.process.find((r) => processRuleAllows(r, command, args));
  if (!declared) {
    const sameCommand = grant.process.some((r) => r.command === command);
    const bad = sameCommand ? args.find((a) => !grant.process.some((r) => r.command === command && (r.args ?? []).map(argPattern).some((p) => p.test(a)))) : undefined;
    return {
      allowed: false,
      rule: "manifest",
      reason: sameCommand ? `argument ${JSON.stringify(bad ?? "")} matches none of the patterns ${grant.skill} declares for ${command}` : `the manifest of ${grant.skill} declares no permission to run ${command}`,
    };
  }
  if (!grant.ceilingProcess.some((r) => processRuleAllows(r, command, args))) {
    return { allowed: false, rule: `ceiling:${grant.trust}`, reason: `trust level "${grant.trust}" does not allow running ${[command, ...args].join(" ")}` };
  }
  return { allowed: true, rule: [declared.command, ...(declared.args ?? [])].join(" ") };
}
