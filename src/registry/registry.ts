/**
 * The skills a host knows: the folder scan (and rescans), skills registered from memory, and the
 * folders that failed to load (kept, so a call to a broken skill says why it is missing).
 */
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { asSkillError, SkillError, SkillNotFoundError, ValidationError, type ErrorCode, type Issue } from "../errors.js";
import { buildSkill, listSkillDirs, loadSkillDir, validateManifest } from "../manifest/load.js";
import type { LoadedSkill } from "../manifest/model.js";
import type { Manifest } from "../manifest/schema.js";

export interface SkillInfo {
  name: string;
  version: string;
  description: string;
  dir: string;
  entrySha256: string;
  permissions: Manifest["permissions"];
  limits: Manifest["limits"];
  fallback: string | null;
}

/** A skill folder that could not be loaded, and why. */
export interface LoadProblem {
  dir: string;
  code: ErrorCode;
  message: string;
  issues: Issue[];
}

/** A skill given from memory: a manifest object plus its module sources. */
export interface SkillSource {
  manifest: unknown;
  files: Record<string, string>;
}

export class SkillRegistry {
  private readonly skills = new Map<string, LoadedSkill>();
  readonly loadProblems: LoadProblem[] = [];

  /**
   * @param skillsDir the folder scanned by rescan()
   * @param changed hears each skill name whose definition changed or went (cached grants for it are stale)
   */
  constructor(
    readonly skillsDir: string,
    private readonly changed: (name: string) => void,
    private readonly warn: (message: string) => void,
  ) {}

  get(name: string): LoadedSkill | undefined {
    return this.skills.get(name);
  }

  /** Every loaded skill, sorted by name. */
  all(): LoadedSkill[] {
    return [...this.skills.values()].sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
  }

  list(): SkillInfo[] {
    return this.all().map(info);
  }

  /** Stage 1 of a call: the skill by name, or the error that says why there is none. */
  lookup(name: string): LoadedSkill | SkillError {
    const skill = this.skills.get(name);
    if (skill) return skill;
    const broken = this.loadProblems.find((p) => p.dir.endsWith(`/${name}`));
    return broken
      ? new SkillError(broken.code, `skill "${name}" was not loaded: ${broken.message}`, { details: { issues: broken.issues } })
      : new SkillNotFoundError(`no skill named "${name}"; registered: ${[...this.skills.keys()].sort().join(", ") || "none"}`);
  }

  /**
   * Rescans the skills folder: new folders are added, changed ones reloaded, removed ones
   * dropped. A folder that no longer loads is reported and keeps its last good version.
   * Skills registered from memory are kept. Returns whether the set of skills changed.
   */
  rescan(): boolean {
    const before = this.fingerprint();
    const dirs = listSkillDirs(this.skillsDir);
    const seen = new Set<string>();
    this.loadProblems.length = 0;
    for (const dir of dirs) {
      try {
        seen.add(this.register(dir).dir);
      } catch (err) {
        const e = asSkillError(err);
        this.loadProblems.push({ dir, code: e.code, message: e.message, issues: err instanceof ValidationError ? err.issues : [] });
        this.warn(`skillbox: skipped skill folder ${dir}:\n  ${e.message.split("\n").join("\n  ")}`);
        const real = safeRealpath(dir);
        for (const s of this.skills.values()) if (s.dir === real) seen.add(s.dir);
      }
    }
    const root = safeRealpath(this.skillsDir);
    for (const [name, s] of this.skills) {
      if (s.dir.startsWith(root + "/") && !seen.has(s.dir)) {
        this.skills.delete(name);
        this.changed(name);
      }
    }
    return this.fingerprint() !== before;
  }

  /** Adds a skill from a folder, or from a manifest object plus module sources. Throws on an invalid skill. */
  register(source: string | SkillSource): SkillInfo {
    let skill: LoadedSkill;
    if (typeof source === "string") skill = loadSkillDir(source);
    else {
      const manifest = validateManifest(source.manifest, "<registered manifest>");
      const files = new Map(Object.entries(source.files));
      skill = buildSkill(manifest, `/registered/${manifest.name}`, files, "<registered manifest>");
    }
    const existing = this.skills.get(skill.manifest.name);
    if (existing && existing.dir !== skill.dir) {
      throw new ValidationError("E_MANIFEST_INVALID", [{ file: join(skill.dir, "skill.yaml"), field: "name", message: `"${skill.manifest.name}" is already registered from ${existing.dir}` }]);
    }
    // A folder whose skill was renamed: the old name goes.
    for (const [n, s] of this.skills) if (s.dir === skill.dir && n !== skill.manifest.name) this.skills.delete(n);
    this.skills.set(skill.manifest.name, skill);
    this.changed(skill.manifest.name);
    return info(skill);
  }

  private fingerprint(): string {
    return [...this.skills.values()]
      .map((s) => `${s.manifest.name}:${s.entrySha256}:${JSON.stringify(s.manifest)}`)
      .sort()
      .join("\n");
  }
}

function info(s: LoadedSkill): SkillInfo {
  const fb = s.manifest.fallback;
  return {
    name: s.manifest.name,
    version: s.manifest.version,
    description: s.manifest.description,
    dir: s.dir,
    entrySha256: s.entrySha256,
    permissions: s.manifest.permissions,
    limits: s.manifest.limits,
    fallback: fb ? ("skill" in fb ? fb.skill : fb.command.join(" ")) : null,
  };
}

export function safeRealpath(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return p;
  }
}
