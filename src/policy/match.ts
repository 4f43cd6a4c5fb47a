import picomatch from "picomatch";
import type { FileAccess } from "../manifest/schema.js";
import { compileGlob } from "../util/glob.js";

/**
 * `${tmp}` differs per call, so rules under it are compiled once against this placeholder root;
 * a real path inside the call's tmp folder is mapped onto it before matching.
 */
export const TMP_PLACEHOLDER = "/.skillbox-call-tmp";

export interface CompiledFileRule {
  /** the rule as written, for messages and the log */
  label: string;
  /** the pattern after variable expansion */
  pattern: string;
  access: ReadonlySet<FileAccess>;
  test: (path: string) => boolean;
}

export { compileGlob };

export function compileFileRule(label: string, pattern: string, access: Iterable<FileAccess>): CompiledFileRule {
  return { label, pattern, access: new Set(access), test: compileGlob(pattern) };
}

const GLOB_CHARS = /[*?[\]{}()!+@]/;

/** The literal folder a glob starts from ("/ws/notes" for "/ws/notes/**\/*.md"). */
export function staticBase(pattern: string): string {
  if (!GLOB_CHARS.test(pattern)) return pattern;
  return picomatch.scan(pattern).base;
}

function within(path: string, base: string): boolean {
  if (base === "/") return path.startsWith("/");
  return path === base || path.startsWith(base + "/");
}

/**
 * Whether every path matched by `need` is also matched by `ceiling`. Conservative: when
 * inclusion cannot be shown, the answer is false (the need is refused, never widened).
 */
export function globCovers(ceiling: string, need: string): boolean {
  if (ceiling === need) return true;
  const ceilingTest = compileGlob(ceiling);
  if (!GLOB_CHARS.test(need)) return ceilingTest(need);
  // "<base>/**" covers anything whose literal folder lies inside <base>.
  if (ceiling.endsWith("/**")) {
    const base = ceiling.slice(0, -3);
    if (!GLOB_CHARS.test(base)) return within(staticBase(need), base || "/");
  }
  if (ceiling === "**" || ceiling === "/**") return need.startsWith("/");
  return false;
}

/** Whether a deny pattern takes everything `need` could match (so declaring it is pointless and refused). */
export function denyCoversNeed(denyTest: (p: string) => boolean, need: string): boolean {
  if (!GLOB_CHARS.test(need)) return denyTest(need);
  const base = staticBase(need);
  return denyTest(base) && denyTest(`${base}/skillbox-probe`);
}
