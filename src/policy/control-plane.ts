import type { FileAccess } from "../manifest/schema.js";

/**
 * The files that decide what skills may do, and the record of what they did. No skill at any
 * trust level (system included) may change them; the state folder and the security log may not
 * even be read. Paths are real (symlink-resolved) and absolute; built once per host and policy
 * version, carried in every Grant.
 */
export interface ControlPlane {
  /** never written, created or deleted: policy file(s), skills folders, key files (and what lies below them); `.git` folders and files everywhere are refused as well */
  protect: readonly string[];
  /** never read, listed, written, created or deleted: the state folder, security log files and their lock files */
  hide: readonly string[];
}

export const EMPTY_CONTROL_PLANE: ControlPlane = { protect: [], hide: [] };

export const CONTROL_PLANE_RULE = "control-plane";

const CHANGES: ReadonlySet<FileAccess> = new Set(["write", "create", "delete"]);

function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root === "/" ? "/" : root + "/");
}

/** A log file's companions: `audit.jsonl.lock`, rotated `audit.jsonl.1`, ... share its name as a prefix. */
function logCompanion(path: string, root: string): boolean {
  return path.startsWith(root + ".") && !path.slice(root.length + 1).includes("/");
}

/**
 * Whether the path is a `.git` folder or file, or lies inside one. Not only hooks run outside any
 * sandbox on the user's next git command: `.git/commondir` (or a `.git` file's `gitdir:`) moves the
 * repository's config and hooks to a folder the skill wrote, and `core.fsmonitor` in a config there
 * runs a command on `git status`. So a skill changes nothing of git's own files.
 */
export function inGitInternals(path: string): boolean {
  return path.split("/").includes(".git");
}

/** What the control plane says about one access: a refusal reason, or undefined when it has no objection. */
export function controlPlaneObjection(cp: ControlPlane, path: string, access: FileAccess): string | undefined {
  for (const h of cp.hide) {
    if (inside(path, h) || logCompanion(path, h)) return "it belongs to skillbox's state or security log, which no skill may read or change";
  }
  if (!CHANGES.has(access)) return undefined;
  for (const p of cp.protect) {
    if (inside(path, p)) return "it belongs to skillbox's control plane (policy, skills, keys), which no skill may change";
  }
  if (inGitInternals(path)) return "git runs hooks and config commands from .git outside any sandbox; no skill may change git's own files";
  return undefined;
}

/** Whether any part of the control plane lies strictly inside `dir` (so a confinement must re-protect it). */
export function controlPlaneInside(cp: ControlPlane, dir: string): { protect: string[]; hide: string[] } {
  const below = (p: string) => p !== dir && inside(p, dir);
  return { protect: cp.protect.filter(below), hide: cp.hide.filter(below) };
}
