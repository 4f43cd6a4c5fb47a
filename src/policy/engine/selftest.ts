import { resolve } from "node:path";
import type { LoadedSkill } from "../../manifest/load.js";
import { expandVars } from "../../util/vars.js";
import { authorize, describeNeeds } from "../authorize.js";
import { checkFileAccess } from "../check.js";
import type { Policy } from "../load.js";
import { checkAddress, checkNetworkRequest, parseAddress } from "../network.js";
import { checkProcess } from "../process.js";
import type { ExpectCase } from "../schema.js";

export interface ExpectResult {
  index: number;
  case: ExpectCase;
  ok: boolean;
  /** the case names a skill that is not registered: neither passed nor failed */
  skipped?: true;
  actual: "allow" | "deny";
  why: string;
}

const SELFTEST_TMP = "/tmp/skillbox-selftest";

/**
 * Runs a policy's `expect:` cases: each asks whether one skill, at one trust level, may have one
 * need, and says what decision it expects. Uses the same pure checks as a call (no DNS: names
 * are not resolved, addresses are checked when the need names one).
 */
export function runExpectations(policy: Policy, skill: (name: string) => LoadedSkill | undefined, vars: { workspace: string; home: string }): ExpectResult[] {
  return policy.rules.expect.map((c, index) => {
    const s = skill(c.skill);
    const result = (actual: "allow" | "deny", why: string): ExpectResult => ({ index, case: c, ok: actual === c.decision, actual, why });
    if (!s) return { index, case: c, ok: false, skipped: true, actual: "deny", why: `skill "${c.skill}" is not registered` };
    const auth = authorize(s.manifest, { trust: c.trust, policy, vars: { ...vars, skill: s.dir } });
    if (!auth.ok) return result("deny", describeNeeds(c.skill, c.trust, auth.needs).split("\n")[0]!);
    const grant = auth.grant;
    const need = c.need;
    if ("files" in need) {
      const path = resolve(expandVars(need.files, { ...vars, skill: s.dir, tmp: SELFTEST_TMP }));
      const d = checkFileAccess(grant, path, need.access, SELFTEST_TMP);
      return result(d.allowed ? "allow" : "deny", d.allowed ? `allowed by ${d.rule}` : `${d.reason} (rule ${d.rule})`);
    }
    if ("network" in need) {
      const url = new URL(need.network.includes("://") ? need.network : `https://${need.network}`);
      const scheme = url.protocol === "http:" ? "http" : "https";
      const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
      const req = { scheme, host, port: url.port ? Number(url.port) : scheme === "https" ? 443 : 80, method: (need.method ?? "GET").toUpperCase() } as const;
      const d = checkNetworkRequest(grant, req);
      if (!d.allowed) return result("deny", `${d.reason} (rule ${d.rule})`);
      const addr = parseAddress(host);
      if (addr) {
        const a = checkAddress(grant, host, addr);
        if (!a.allowed) return result("deny", `${a.reason} (rule ${a.rule})`);
      }
      return result("allow", `allowed by ${d.rule}`);
    }
    const d = checkProcess(grant, need.process, need.args);
    return result(d.allowed ? "allow" : "deny", d.allowed ? `allowed by ${d.rule}` : `${d.reason} (rule ${d.rule})`);
  });
}

export function describeExpect(r: ExpectResult): string {
  const n = r.case.need;
  if (r.skipped) return `${r.case.skill} at ${r.case.trust}: skipped, ${r.why}`;
  const what = "files" in n ? `${n.access} ${n.files}` : "network" in n ? `${n.method ?? "GET"} ${n.network}` : [n.process, ...n.args].join(" ");
  return `${r.case.skill} at ${r.case.trust}: ${what} → expected ${r.case.decision}, got ${r.actual} (${r.why})`;
}
