import type { Policy } from "../load.js";
import { TRUST_LEVELS } from "../trust.js";

export interface DiffLine {
  change: "added" | "removed" | "changed";
  /** what the change does to what callers may do */
  effect: "widened" | "narrowed" | "neutral";
  where: string;
  detail: string;
}

const key = (v: unknown) => JSON.stringify(v);

/** Rule-level differences from policy `a` to policy `b`, each marked as widening or narrowing access. */
export function diffPolicies(a: Policy, b: Policy): DiffLine[] {
  const out: DiffLine[] = [];
  for (const level of TRUST_LEVELS) {
    const ca = a.ceilings[level];
    const cb = b.ceilings[level];
    // Files: by path; access added widens, removed narrows.
    const fa = new Map(ca.files.map((r) => [r.path, new Set(r.access)]));
    const fb = new Map(cb.files.map((r) => [r.path, new Set(r.access)]));
    for (const [path, acc] of fb) {
      const before = fa.get(path);
      if (!before) out.push({ change: "added", effect: "widened", where: `trust.${level}.files`, detail: `${path} [${[...acc].join(", ")}]` });
      else {
        const added = [...acc].filter((x) => !before.has(x));
        const removed = [...before].filter((x) => !acc.has(x));
        if (added.length) out.push({ change: "changed", effect: "widened", where: `trust.${level}.files`, detail: `${path}: + ${added.join(", ")}` });
        if (removed.length) out.push({ change: "changed", effect: "narrowed", where: `trust.${level}.files`, detail: `${path}: − ${removed.join(", ")}` });
      }
    }
    for (const [path, acc] of fa) if (!fb.has(path)) out.push({ change: "removed", effect: "narrowed", where: `trust.${level}.files`, detail: `${path} [${[...acc].join(", ")}]` });
    for (const kind of ["network", "process"] as const) {
      const ra = new Set(ca[kind].map(key));
      const rb = new Set(cb[kind].map(key));
      for (const r of rb) if (!ra.has(r)) out.push({ change: "added", effect: "widened", where: `trust.${level}.${kind}`, detail: r });
      for (const r of ra) if (!rb.has(r)) out.push({ change: "removed", effect: "narrowed", where: `trust.${level}.${kind}`, detail: r });
    }
    for (const lim of ["memoryMb", "timeoutMs", "outputBytes"] as const) {
      if (ca.limits[lim] !== cb.limits[lim])
        out.push({ change: "changed", effect: cb.limits[lim] > ca.limits[lim] ? "widened" : "narrowed", where: `trust.${level}.limits.${lim}`, detail: `${ca.limits[lim]} → ${cb.limits[lim]}` });
    }
  }
  for (const kind of ["files", "network"] as const) {
    const da = new Set(a.deny[kind]);
    const db = new Set(b.deny[kind]);
    for (const d of db) if (!da.has(d)) out.push({ change: "added", effect: "narrowed", where: `deny.${kind}`, detail: d });
    for (const d of da) if (!db.has(d)) out.push({ change: "removed", effect: "widened", where: `deny.${kind}`, detail: d });
  }
  if (key(a.binPath) !== key(b.binPath)) out.push({ change: "changed", effect: "neutral", where: "binPath", detail: `${a.binPath.join(":")} → ${b.binPath.join(":")}` });
  if (a.audit.failMode !== b.audit.failMode)
    out.push({ change: "changed", effect: b.audit.failMode === "open" ? "widened" : "narrowed", where: "audit.failMode", detail: `${a.audit.failMode} → ${b.audit.failMode}` });
  // Restrictions: adding one narrows, removing one widens.
  const restrictions = [
    ["rateLimits", a.rules.rateLimits, b.rules.rateLimits],
    ["windows", a.rules.windows, b.rules.windows],
    ["filters.rules", a.rules.filters.rules, b.rules.filters.rules],
    ["filters.presets", a.rules.filters.presets, b.rules.filters.presets],
    ["approvals", a.rules.approvals, b.rules.approvals],
    ["signing.require", a.rules.signing?.require ?? [], b.rules.signing?.require ?? []],
  ] as const;
  for (const [where, ra, rb] of restrictions) {
    const sa = new Set((ra as unknown[]).map(key));
    const sb = new Set((rb as unknown[]).map(key));
    for (const r of sb) if (!sa.has(r)) out.push({ change: "added", effect: "narrowed", where, detail: r });
    for (const r of sa) if (!sb.has(r)) out.push({ change: "removed", effect: "widened", where, detail: r });
  }
  if (key(a.rules.concurrency) !== key(b.rules.concurrency)) {
    const before = a.rules.concurrency?.perCaller ?? Infinity;
    const after = b.rules.concurrency?.perCaller ?? Infinity;
    out.push({ change: "changed", effect: after > before ? "widened" : "narrowed", where: "concurrency.perCaller", detail: `${before} → ${after}` });
  }
  return out;
}
