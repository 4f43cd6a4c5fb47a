/**
 * Text from skills and callers is printed to an operator's terminal only after this: a skill must
 * not be able to move the cursor, erase lines, retitle the window, set the clipboard (OSC 52) or
 * forge log lines. Every C0 and C1 control character, DEL, and the Unicode bidirectional overrides
 * become visible escapes (`\x1b`, `\n`, `\u202e`), so an ESC/CSI/OSC sequence prints as inert text.
 */

// C0 (newline and tab included: one event is one line), DEL, C1, line/paragraph separators, bidi controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function visible(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** `text` with every control character shown as an escape; safe to print to a terminal. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, visible);
}

/** Whether `text` holds anything escapeControl would change. */
export function hasControl(text: string): boolean {
  CONTROL.lastIndex = 0;
  const found = CONTROL.test(text);
  CONTROL.lastIndex = 0;
  return found;
}

// JSON.stringify escapes C0 but leaves DEL, C1 and the bidi controls raw.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A JSON text with the controls JSON leaves raw written as \u escapes: the same value, safe to print. */
export function terminalSafeJson(json: string): string {
  return json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A copy of a parsed JSON value with every string (keys too) passed through escapeControl. Depth-bounded. */
export function escapeDeep<T>(value: T, depth = 0): T {
  if (typeof value === "string") return escapeControl(value) as T;
  if (value === null || typeof value !== "object" || depth > 64) return value;
  if (Array.isArray(value)) return value.map((v) => escapeDeep(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[escapeControl(k)] = escapeDeep(v, depth + 1);
  return out as T;
}
