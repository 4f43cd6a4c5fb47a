/**
 * Whether a path glob is too broad to grant: matching is tested, not the spelling, so `/**`,
 * `**\/*`, `/*\/**` and `/{etc,usr}/**` are all caught. The compiled glob is run against probe
 * paths in unrelated top-level folders (and in the home folder); variables are expanded to
 * probe folders of their own first, so `${workspace}/**` stays a narrow grant.
 */
import { compileGlob } from "../util/glob.js";
import { KNOWN_VARS } from "../util/vars.js";

export type Breadth = "file-system" | "home";

const VAR_ROOT = "/.skillbox-probe";
const HOME = `${VAR_ROOT}-home`;
const ROOTS = ["etc", "usr", "var", "root", "opt", "srv", "boot", "proc", "sys", "dev", "bin", "lib", "mnt", "home"];
const ROOT_PROBES = ROOTS.map((r) => [`/${r}`, `/${r}/probe`, `/${r}/probe/deeper.txt`]);
const HOME_PROBES = [`${HOME}/.ssh/id_ed25519`, `${HOME}/.aws/credentials`, `${HOME}/.gnupg/private-keys-v1.d/k.key`, `${HOME}/Documents/notes.txt`];

function expandForProbe(pattern: string): string {
  return pattern.replace(/\$\{([a-z]+)\}/g, (m, name: string) => (KNOWN_VARS.includes(name) ? `${VAR_ROOT}-${name}` : m));
}

/** "file-system": the glob reaches into two or more unrelated top-level folders (or is `/`); "home": all of ${home}; null: neither. */
export function breadthOf(pattern: string): Breadth | null {
  let test: (path: string) => boolean;
  try {
    test = compileGlob(expandForProbe(pattern.trim()));
  } catch {
    return null; // not a glob the schema lets through anyway
  }
  if (test("/")) return "file-system";
  const roots = ROOT_PROBES.filter((probes) => probes.some(test)).length;
  if (roots >= 2) return "file-system";
  if (test(HOME) || HOME_PROBES.filter(test).length >= 2) return "home";
  return null;
}
