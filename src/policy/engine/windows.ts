import type { WindowRule } from "../schema.js";

const formatters = new Map<string, Intl.DateTimeFormat>();

function parts(epochMs: number, tz: string): { day: string; minutes: number; y: number; mo: number; d: number; h: number; mi: number; s: number } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(epochMs)).map((x) => [x.type, x.value]));
  const h = Number(p["hour"]) % 24;
  const mi = Number(p["minute"]);
  return { day: String(p["weekday"]).slice(0, 3).toLowerCase(), minutes: h * 60 + mi, y: Number(p["year"]), mo: Number(p["month"]), d: Number(p["day"]), h, mi, s: Number(p["second"]) };
}

/** Epoch ms of a local date-time ("2026-12-24T00:00") in a time zone. */
export function localToEpoch(local: string, tz: string): number {
  const [date, time] = local.split("T") as [string, string];
  const [y, mo, d] = date.split("-").map(Number) as [number, number, number];
  const [h, mi, s = 0] = time.split(":").map(Number) as [number, number, number?];
  const asUtc = Date.UTC(y, mo - 1, d, h, mi, s);
  // The zone's offset at that moment (two passes settle DST edges).
  let guess = asUtc;
  for (let i = 0; i < 2; i++) {
    const p = parts(guess, tz);
    const shown = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
    guess += asUtc - shown;
  }
  return guess;
}

/** Pure: is `now` inside the window's allowed time (allow), or outside its blackout (deny)? */
export function windowAllows(w: WindowRule, now: number): boolean {
  if (w.allow) {
    const p = parts(now, w.allow.tz);
    if (w.allow.days && !w.allow.days.includes(p.day as never)) return false;
    if (w.allow.hours) {
      const [from, to] = w.allow.hours.split("-").map((t) => {
        const [h, m] = t.split(":").map(Number) as [number, number];
        return h * 60 + m;
      }) as [number, number];
      // "22:00-06:00" spans midnight.
      return from <= to ? p.minutes >= from && p.minutes < to : p.minutes >= from || p.minutes < to;
    }
    return true;
  }
  const d = w.deny!;
  const from = localToEpoch(d.from, d.tz);
  const to = localToEpoch(d.to, d.tz);
  return !(now >= from && now < to);
}

export function describeWindow(w: WindowRule, index: number): string {
  const name = w.name ? `"${w.name}"` : `windows[${index}]`;
  if (w.allow) return `${name} (allowed ${w.allow.days?.join(",") ?? "every day"} ${w.allow.hours ?? "all day"} ${w.allow.tz})`;
  return `${name} (blackout ${w.deny!.from} to ${w.deny!.to} ${w.deny!.tz})`;
}

/** Why a window refuses a call now: outside an allowed window, or inside a blackout. */
export function windowRefusal(w: WindowRule, index: number): string {
  return w.allow ? `outside the allowed time window ${describeWindow(w, index)}` : `inside the blackout window ${describeWindow(w, index)}`;
}
