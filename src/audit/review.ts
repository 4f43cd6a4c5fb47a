/** Post-session review of a security log: pure functions over parsed events. */

export { parseDuration } from "../util/duration.js";

export type AuditEvent = Record<string, unknown> & { event?: string; time?: string };

export interface Flag {
  kind: "write-outside-tmp" | "delete" | "process" | "new-host" | "repeated-denials" | "unfinished";
  skill: string;
  target: string;
  time: string;
  callId: string;
}

export interface SkillReview {
  skill: string;
  calls: number;
  outcomes: Record<string, number>;
  retries: number;
  fallbacks: number;
  denials: { op: string; target: string; rule: string; count: number }[];
  processes: { command: string; args: unknown; exitCode: unknown; count: number }[];
  hosts: string[];
  filesWritten: string[];
  foldersCreated: string[];
  filesDeleted: string[];
  /** refusal events: refused calls plus refused accesses */
  denialEvents: number;
}

export interface SessionReview {
  session: string | null;
  from: string;
  to: string;
  callers: string[];
  skills: SkillReview[];
  flags: Flag[];
}

function hostOf(target: string): string {
  try {
    return new URL(target).host;
  } catch {
    return target;
  }
}

const REPEATED_DENIALS = 3;

export function reviewEvents(events: AuditEvent[], options: { since?: number; session?: string; now?: number } = {}): SessionReview[] {
  const cutoff = options.since === undefined ? -Infinity : (options.now ?? Date.now()) - options.since;
  const bySession = new Map<string, AuditEvent[]>();
  const firstSeenHost = new Map<string, string>(); // host -> session that first contacted it
  for (const e of events) {
    const key = String(e["session"] ?? "");
    if (e["event"] === "capability" && e["op"] === "fetch" && e["decision"] === "allow") {
      const h = hostOf(String(e["target"]));
      if (!firstSeenHost.has(h)) firstSeenHost.set(h, key);
    }
    if (Date.parse(String(e.time ?? "")) < cutoff) continue;
    if (options.session !== undefined && key !== options.session) continue;
    let list = bySession.get(key);
    if (!list) bySession.set(key, (list = []));
    list.push(e);
  }

  const out: SessionReview[] = [];
  for (const [key, list] of bySession) {
    const skills = new Map<string, SkillReview>();
    const flags: Flag[] = [];
    const sk = (name: string) => {
      let s = skills.get(name);
      if (!s)
        skills.set(
          name,
          (s = { skill: name, calls: 0, outcomes: {}, retries: 0, fallbacks: 0, denials: [], processes: [], hosts: [], filesWritten: [], foldersCreated: [], filesDeleted: [], denialEvents: 0 }),
        );
      return s;
    };
    const flag = (kind: Flag["kind"], e: AuditEvent, target: string) => flags.push({ kind, skill: String(e["skill"]), target, time: String(e.time), callId: String(e["callId"]) });
    const deny = (s: SkillReview, op: string, target: string, rule: string) => {
      const d = s.denials.find((x) => x.op === op && x.target === target && x.rule === rule);
      if (d) d.count++;
      else s.denials.push({ op, target, rule, count: 1 });
    };
    const open = new Map<string, AuditEvent>(); // callId -> its call.start, until its call.end
    for (const e of list) {
      const s = sk(String(e["skill"] ?? "?"));
      if (e.event === "call.start") open.set(String(e["callId"]), e);
      else if (e.event === "call.end") open.delete(String(e["callId"]));
      switch (e.event) {
        case "call.end": {
          s.calls++;
          const outcome = e["outcome"] === "ok" ? "ok" : String(e["code"]);
          s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1;
          s.retries += Math.max(0, Number(e["attempts"] ?? 0) - 1);
          if (e["fallback"]) s.fallbacks++;
          break;
        }
        case "call.denied":
          if (e["code"] === "E_PERMISSION_DENIED") {
            s.denialEvents++;
            for (const n of (e["needs"] as { kind: string; target: string; access: string | null; rule: string }[] | undefined) ?? []) {
              deny(s, n.access ? `${n.kind}:${n.access}` : n.kind, n.target, n.rule);
            }
          }
          break;
        case "capability": {
          const op = String(e["op"]);
          const target = String(e["target"]);
          if (e["decision"] !== "allow") {
            s.denialEvents++;
            deny(s, op, target, String(e["rule"]));
            break;
          }
          if (op === "fs.writeFile" || op === "fs.mkdir") {
            const list = op === "fs.mkdir" ? s.foldersCreated : s.filesWritten;
            if (!list.includes(target)) list.push(target);
            if (!e["tmp"]) flag("write-outside-tmp", e, target);
          } else if (op === "fs.delete") {
            if (!s.filesDeleted.includes(target)) s.filesDeleted.push(target);
            flag("delete", e, target);
          } else if (op === "fetch") {
            const h = hostOf(target);
            if (!s.hosts.includes(h)) {
              s.hosts.push(h);
              if (firstSeenHost.get(h) === key) flag("new-host", e, h);
            }
          }
          break;
        }
        case "process.exec":
          if (e["decision"] === "allow") {
            const p = s.processes.find((x) => x.command === e["command"] && JSON.stringify(x.args) === JSON.stringify(e["args"]));
            if (p) p.count++;
            else s.processes.push({ command: String(e["command"]), args: e["args"], exitCode: e["exitCode"], count: 1 });
            flag("process", e, [e["command"], ...((e["args"] as string[]) ?? [])].join(" "));
          }
          break;
      }
    }
    for (const e of open.values()) flag("unfinished", e, `call ${String(e["callId"])}`);
    for (const s of skills.values()) {
      if (s.denialEvents >= REPEATED_DENIALS) flags.push({ kind: "repeated-denials", skill: s.skill, target: `${s.denialEvents} refusals`, time: String(list.at(-1)?.time), callId: "" });
    }
    out.push({
      session: key === "" ? null : key,
      from: String(list[0]?.time ?? ""),
      to: String(list.at(-1)?.time ?? ""),
      callers: [...new Set(list.map((e) => String(e["caller"] ?? "?")))].sort(),
      skills: [...skills.values()].filter((s) => s.calls > 0 || s.denials.length > 0).sort((a, b) => a.skill.localeCompare(b.skill)),
      flags,
    });
  }
  return out;
}

/** Per skill and outcome: counts and latency percentiles; denials per rule. */
export interface AuditStats {
  calls: { skill: string; outcome: string; count: number; p50Ms: number; p95Ms: number; p99Ms: number }[];
  denials: { rule: string; count: number }[];
  events: number;
  /** calls with a call.start and no call.end: still running, or their end was lost or removed */
  unfinished: { callId: string; skill: string; time: string }[];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function statsOf(events: AuditEvent[]): AuditStats {
  const durations = new Map<string, number[]>();
  const denials = new Map<string, number>();
  const open = new Map<string, AuditEvent>();
  for (const e of events) {
    if (e.event === "call.start") open.set(String(e["callId"]), e);
    if (e.event === "call.end") {
      open.delete(String(e["callId"]));
      const k = `${e["skill"]}\0${e["outcome"] === "ok" ? "ok" : e["code"]}`;
      let d = durations.get(k);
      if (!d) durations.set(k, (d = []));
      d.push(Number(e["durationMs"] ?? 0));
    } else if (e.event === "capability" && e["decision"] === "deny") {
      denials.set(String(e["rule"]), (denials.get(String(e["rule"])) ?? 0) + 1);
    } else if (e.event === "call.denied" && e["code"] === "E_PERMISSION_DENIED") {
      for (const n of (e["needs"] as { kind: string }[] | undefined) ?? []) denials.set(`authorize:${n.kind}`, (denials.get(`authorize:${n.kind}`) ?? 0) + 1);
    }
  }
  return {
    calls: [...durations]
      .map(([k, d]) => {
        const [skill, outcome] = k.split("\0") as [string, string];
        d.sort((a, b) => a - b);
        return { skill, outcome, count: d.length, p50Ms: percentile(d, 50), p95Ms: percentile(d, 95), p99Ms: percentile(d, 99) };
      })
      .sort((a, b) => a.skill.localeCompare(b.skill) || a.outcome.localeCompare(b.outcome)),
    denials: [...denials].map(([rule, count]) => ({ rule, count })).sort((a, b) => b.count - a.count),
    events: events.length,
    unfinished: [...open.values()].map((e) => ({ callId: String(e["callId"]), skill: String(e["skill"]), time: String(e.time ?? "") })),
  };
}
