import picomatch from "picomatch";
import { compile, RegexError } from "./regex.js";

/*
 * File globs from manifests and policies, matched in linear time.
 *
 * picomatch turns a glob into a backtracking RegExp: `/w/**\/a/**\/a/**\/b` against a 200-character
 * path took 1.4 s, against 800 characters 20 s — and the skill chooses the path. The expression
 * picomatch builds is kept (its semantics are the contract) but run on the linear-time engine. Its
 * lookaheads only refuse `.` and `..` segments and empty segments, which a normalized absolute
 * path (the only kind the policy checks, after resolving) never has; for such paths the guards
 * are dropped and the rest runs on RE2. Any other path, and the rare glob whose expression keeps a
 * lookaround after that (negated extglobs such as `!(x)`), use picomatch itself.
 */

const OPTIONS = { dot: true, nonegate: true, strictSlashes: false } as const;
/** picomatch's guards against `.`/`..` segments and empty segments (see above). */
const GUARDS = ["(?!(?:^|\\/)\\.{1,2}(?:\\/|$))", "(?!\\.{1,2}(?:\\/|$))", "(?=.)"];

/** Whether `path` is absolute and normalized: no empty, `.` or `..` segment, no trailing slash. */
function normalized(path: string): boolean {
  if (!path.startsWith("/") || path === "/") return false;
  if (path.endsWith("/")) return false;
  for (const seg of path.slice(1).split("/")) if (seg === "" || seg === "." || seg === "..") return false;
  return true;
}

/**
 * Compiles a path glob the one way skillbox matches paths (`*` and `?` stop at `/`, `**` does
 * not, dot files included, no negation). The grant checks and the load-time breadth check share
 * it, so what the schema calls "the whole file system" is what the checks would let through.
 * Linear-time for normalized absolute paths (see above).
 */
export function compileGlob(pattern: string): (path: string) => boolean {
  const matcher = picomatch(pattern, OPTIONS);
  // One argument only, always a boolean: picomatch reads a second argument (an array method's
  // index) as "return a match object", which is truthy even for a miss.
  const backtracking = (path: string) => matcher(path) === true;
  let source = picomatch.makeRe(pattern, OPTIONS).source;
  for (const guard of GUARDS) source = source.split(guard).join("");
  let linear: ReturnType<typeof compile>;
  try {
    linear = compile(source);
  } catch (err) {
    if (!(err instanceof RegexError)) throw err;
    return backtracking;
  }
  return (path) => (normalized(path) ? linear.test(path) : backtracking(path));
}
