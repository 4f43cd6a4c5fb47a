import type { AuditStats, SessionReview } from "../audit/review.js";

/** A plain text table: header, rule, rows; columns padded to their widest cell. */
export function table(header: string[], rows: (string | number)[][]): string[] {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...cells.slice(1).map(line)];
}

const FLAG_TEXT: Record<string, string> = {
  "write-outside-tmp": "wrote outside ${tmp}",
  delete: "deleted",
  process: "ran a process",
  "new-host": "contacted a host first seen this session",
  "repeated-denials": "was denied repeatedly",
  unfinished: "started a call that never ended (still running, or its end was lost)",
};

export function renderReview(sessions: SessionReview[]): string[] {
  if (sessions.length === 0) return ["no calls in this window"];
  const out: string[] = [];
  for (const s of sessions) {
    out.push(`Session ${s.session ?? "(none)"} · ${s.from.replace("T", " ").slice(0, 19)} → ${s.to.replace("T", " ").slice(11, 19)} · callers: ${s.callers.join(", ")}`, "");
    out.push(
      ...table(
        ["skill", "calls", "ok", "failed", "denied", "retries", "fallbacks"],
        s.skills.map((k) => {
          const failed = Object.entries(k.outcomes).filter(([o]) => o !== "ok" && o !== "E_PERMISSION_DENIED");
          return [k.skill, k.calls, k.outcomes["ok"] ?? 0, failed.map(([o, n]) => `${n} ${o}`).join(", ") || "0", k.outcomes["E_PERMISSION_DENIED"] ?? 0, k.retries, k.fallbacks];
        }),
      ).map((l) => "  " + l),
    );
    const denials = s.skills.flatMap((k) => k.denials.map((d) => [k.skill, d.op, d.target, d.rule, d.count]));
    if (denials.length) out.push("", "  Denials", ...table(["skill", "what", "target", "rule", "times"], denials).map((l) => "  " + l));
    const procs = s.skills.flatMap((k) => k.processes.map((p) => [k.skill, `${p.command} ${(p.args as string[]).join(" ")}`, String(p.exitCode), p.count]));
    if (procs.length) out.push("", "  Processes run", ...table(["skill", "command", "exit", "times"], procs).map((l) => "  " + l));
    const hosts = s.skills.flatMap((k) => k.hosts.map((h) => [k.skill, h]));
    if (hosts.length) out.push("", "  Hosts contacted", ...table(["skill", "host"], hosts).map((l) => "  " + l));
    const files = s.skills.flatMap((k) => [
      ...k.filesWritten.map((f) => [k.skill, "written", f]),
      ...k.foldersCreated.map((f) => [k.skill, "folder created", f]),
      ...k.filesDeleted.map((f) => [k.skill, "deleted", f]),
    ]);
    if (files.length) out.push("", "  Files changed", ...table(["skill", "change", "path"], files).map((l) => "  " + l));
    if (s.flags.length) {
      out.push("", `  ⚑ Flagged (${s.flags.length})`);
      for (const f of s.flags) out.push(`  ⚑ ${f.skill} ${FLAG_TEXT[f.kind] ?? f.kind}: ${f.target}${f.time ? `  (${f.time.slice(11, 19)})` : ""}`);
    } else out.push("", "  Nothing flagged.");
    out.push("");
  }
  return out;
}

export function renderStats(s: AuditStats, writeFailures?: number): string[] {
  const ms = (v: number) => v.toFixed(1);
  return [
    ...table(
      ["skill", "outcome", "calls", "p50 ms", "p95 ms", "p99 ms"],
      s.calls.map((c) => [c.skill, c.outcome, c.count, ms(c.p50Ms), ms(c.p95Ms), ms(c.p99Ms)]),
    ),
    "",
    ...(s.denials.length
      ? table(
          ["denied by rule", "times"],
          s.denials.map((d) => [d.rule, d.count]),
        )
      : ["no denials"]),
    "",
    ...(s.unfinished.length
      ? [
          `⚑ ${s.unfinished.length} call(s) started and never ended (still running, or their end was lost):`,
          ...s.unfinished.slice(0, 20).map((u) => `  ${u.time.replace("T", " ").slice(0, 19)}  ${u.callId}  ${u.skill}`),
          ...(s.unfinished.length > 20 ? [`  … and ${s.unfinished.length - 20} more`] : []),
          "",
        ]
      : []),
    `${s.events} events${writeFailures === undefined ? "" : `, ${writeFailures} log write failures`}`,
  ];
}
