/** The last `n` events of a security log, as readable lines (or the raw JSON lines). */
export function tailAudit(text: string, n: number, raw: boolean): string[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "").slice(-n);
  if (raw) return lines;
  return lines.map((line) => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return `(unreadable line) ${line.slice(0, 120)}`;
    }
    const time = String(e["time"] ?? "").replace("T", " ").replace(/\.\d+Z$/, "Z");
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
        return `${time} ${call} log.${e["level"]}  ${e["message"]}`;
      default:
        return `${time} ${call} ${String(e["event"])}`;
    }
  });
}
