import picomatch from "picomatch";

/**
 * Compiles a path glob the one way skillbox matches paths (`*` and `?` stop at `/`, `**` does
 * not, dot files included, no negation). The grant checks and the load-time breadth check share
 * it, so what the schema calls "the whole file system" is what the checks would let through.
 */
export function compileGlob(pattern: string): (path: string) => boolean {
  const matcher = picomatch(pattern, { dot: true, nonegate: true, strictSlashes: false });
  // One argument only, always a boolean: picomatch reads a second argument (an array method's
  // index) as "return a match object", which is truthy even for a miss.
  return (path) => matcher(path) === true;
}
