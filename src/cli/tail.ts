import { escapeControl, escapeDeep, terminalSafeJson } from "../util/terminal.js";

/**
 * The last `n` events of a security log, as readable lines (or the raw JSON lines). Skills and
 * callers control much of this text: every control character is shown escaped, never sent raw.
 */
export function tailAudit(text: string, n: number, raw: boolean): string[] {
  const lines = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-n);
  // Valid JSON holds no raw C0; what JSON leaves raw (C1, bidi) becomes \u escapes, the same value.
  if (raw) return lines.map((l) => escapeControl(terminalSafeJson(l)));
  return lines.map((line) => {
    let e: Record<string, unknown>;
    try {
      e = escapeDeep(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return `(unreadable line) ${escapeControl(line.slice(0, 120))}`;
    }
    const time = String(e["time"] ?? "")
      .replace("T", " ")
      .replace(/\.\d+Z$/, "Z");
    const who = `${e["skill"]} by ${e["caller"]} (${e["trust"]})`;
    const call = String(e["callId"] ?? "").slice(0, 8);
    switch (e["event"]) {
      case "call.start":
        return `${time} ${call} start     ${who}`;
      case "call.end":
        return `${time} ${call} end       ${who}: ${e["outcome"] === "ok" ? "ok" : e["code"]} after ${e["attempts"]} attempt(s), ${e["durationMs"]} ms${e["fallback"] ? `, fallback ${e["fallback"]}` : ""}`;
      case "call.denied":
        return `${time} ${call} ${e["code"] === "E_PERMISSION_DENIED" ? "DENIED " : "REFUSED"}   ${who}: ${e["code"]} ${JSON.stringify(e["needs"] ?? e["reason"])}`;
      case "capability":
        return `${time} ${call} ${e["decision"] === "allow" ? "allow" : "DENY "}     ${e["op"]} ${e["target"]} (rule ${e["rule"]})`;
      case "attempt.start":
        return `${time} ${call} attempt ${e["attempt"]}`;
      case "attempt.end":
        return `${time} ${call} attempt ${e["attempt"]} ${e["outcome"] === "ok" ? "ok" : `${e["code"]}${e["willRetry"] ? `, retry in ${e["retryDelayMs"]} ms` : ""}`}`;
      case "fallback.start":
        return `${time} ${call} fallback  ${e["fallback"]} after ${e["after"]}`;
      case "process.exec":
        return e["decision"] === "allow"
          ? `${time} ${call} exec      ${e["command"]} ${JSON.stringify(e["args"])} -> ${e["exitCode"] ?? e["signal"]} in ${e["durationMs"]} ms${e["truncated"] ? " (output capped)" : ""}${e["timedOut"] ? " (killed at timeout)" : ""}`
          : `${time} ${call} DENY exec ${e["command"]} ${JSON.stringify(e["args"])} (rule ${e["rule"]})`;
      case "skill.log":
        return `${time} ${call} log.${e["level"]}  ${e["message"]}${e["fields"] !== undefined && e["fields"] !== null ? ` ${JSON.stringify(e["fields"])}` : ""}`;
      case "log.gap":
        return `${time} ${call} GAP       ${e["lost"]} event(s) could not be written between ${e["from"]} and ${e["to"]}`;
      case "log.checkpoint":
        return `${time} checkpoint head seq ${(e["head"] as { seq?: unknown } | undefined)?.seq}`;
      default:
        return `${time} ${call} ${String(e["event"])}`;
    }
  });
}
