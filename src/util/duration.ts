/**
 * The one duration format of skillbox: a number and a unit — "250ms", "90s", "30m", "2h", "7d".
 * Policy files (approvals[].expiresIn) and the CLI (`audit review --since`) both use it.
 */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses a duration into milliseconds; throws for anything else, saying what was expected. */
export function parseDuration(text: string): number {
  const m = DURATION_PATTERN.exec(text.trim());
  if (!m) throw new Error(`expected a duration such as 30m, 2h or 7d, got "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
