import { realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, resolve } from "node:path";

/** A path a skill named: normalized (`lexical`) and with every symlink on the way resolved (`real`). */
export interface ResolvedPath {
  lexical: string;
  real: string;
  exists: boolean;
}

const MAX_MISSING_PARTS = 256;

/**
 * Normalizes `raw` against `base` and resolves symlinks without blocking the event loop. A path
 * that does not exist (yet) resolves through its nearest existing ancestor, so a symlink anywhere
 * on the way is followed before the check, never after. Never throws for a missing path; other
 * errors (EACCES, ELOOP, ENAMETOOLONG) resolve lexically, as the access check refuses or the
 * operation fails on them later without saying what exists where.
 */
export async function resolvePath(raw: string, base: string): Promise<ResolvedPath> {
  const lexical = resolve(isAbsolute(raw) ? raw : resolve(base, raw));
  try {
    return { lexical, real: await realpath(lexical), exists: true };
  } catch {
    /* missing, or not resolvable: walk up */
  }
  let ancestor = dirname(lexical);
  const rest = [basename(lexical)];
  for (let i = 0; i < MAX_MISSING_PARTS; i++) {
    try {
      return { lexical, real: resolve(await realpath(ancestor), ...rest), exists: false };
    } catch {
      if (ancestor === "/") break;
      rest.unshift(basename(ancestor));
      ancestor = dirname(ancestor);
    }
  }
  return { lexical, real: lexical, exists: false };
}
