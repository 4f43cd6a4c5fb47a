import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { SkillError, ValidationError, type Issue } from "../errors.js";
import { parseYamlSafe } from "../util/yaml.js";
import { compileSchemaPatterns, compileValidator, SchemaPatternError } from "./json-schema.js";
import { manifestSchema, zodIssues, type Manifest } from "./schema.js";
import type { LoadedSkill } from "./model.js";
import { SIGNATURE_FILE } from "./signing.js";

export const MANIFEST_FILE = "skill.yaml";
const MAX_MODULE_FILES = 200;
const MAX_MODULE_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 8;

export type { LoadedSkill } from "./model.js";

/** Parses and validates a manifest text. Throws ValidationError with every issue at once. */
export function parseManifest(text: string, file: string): Manifest {
  const parsed = parseYamlSafe(text, file);
  if (!parsed.ok) throw new ValidationError("E_MANIFEST_INVALID", parsed.issues);
  return validateManifest(parsed.yaml.value, file, parsed.yaml.lineOf);
}

export function validateManifest(value: unknown, file: string, lineOf?: (path: readonly PropertyKey[]) => number | undefined): Manifest {
  const result = manifestSchema.safeParse(value);
  if (!result.success) throw new ValidationError("E_MANIFEST_INVALID", zodIssues(result.error, file, lineOf, manifestSchema));
  const issues: Issue[] = [];
  const input = result.data.input;
  if (input["type"] !== "object") issues.push({ file, field: "input.type", message: `must be "object" (tools take an object of named arguments), got ${JSON.stringify(input["type"])}` });
  for (const [key, schema] of [
    ["input", input],
    ["output", result.data.output],
  ] as const) {
    if (schema === undefined) continue;
    // Patterns compile here, at load: an invalid one is a manifest error, never a failure at the first call.
    const compiled = compileSchemaPatterns(schema, key, file);
    issues.push(...compiled.issues);
    if (compiled.tooDeep) continue;
    const refs = JSON.stringify(schema).match(/"\$ref"\s*:\s*"(?!#)[^"]*"/g);
    if (refs) issues.push({ file, field: key, message: `only local $ref ("#/...") is supported, found ${refs[0]}` });
  }
  if (issues.length > 0)
    throw new ValidationError(
      "E_MANIFEST_INVALID",
      issues.map((i) => withLine(i, lineOf)),
    );
  return result.data;
}

function withLine(issue: Issue, lineOf?: (path: readonly PropertyKey[]) => number | undefined): Issue {
  const line = lineOf?.(issue.field.split("."));
  return line === undefined ? issue : { ...issue, line };
}

/** Builds a LoadedSkill from a manifest and its module sources (already read). */
export function buildSkill(manifest: Manifest, dir: string, files: ReadonlyMap<string, string>, manifestFile: string): LoadedSkill {
  const entrySource = files.get(manifest.entry);
  if (entrySource === undefined) {
    throw new ValidationError("E_MANIFEST_INVALID", [{ file: manifestFile, field: "entry", message: `entry file "${manifest.entry}" not found in the skill folder` }]);
  }
  const entrySha256 = createHash("sha256").update(entrySource).digest("hex");
  if (manifest.sha256 !== undefined && manifest.sha256 !== entrySha256) {
    throw new SkillError("E_INTEGRITY", `${manifestFile}: sha256: ${manifest.entry} has sha256 ${entrySha256}, but the manifest pins ${manifest.sha256}; the entry was changed after it was pinned`, {
      details: { file: manifestFile, field: "sha256", expected: manifest.sha256, actual: entrySha256 },
    });
  }
  let validateInput, validateOutput;
  try {
    validateInput = compileValidator(manifest.input, "input", manifestFile);
    validateOutput = compileValidator(manifest.output, "output", manifestFile);
  } catch (err) {
    if (err instanceof SchemaPatternError) throw new ValidationError("E_MANIFEST_INVALID", err.issues);
    throw err;
  }
  return { manifest, dir, files, entrySha256, validateInput, validateOutput };
}

/** Loads one skill folder: `skill.yaml` plus its .js/.mjs modules. Throws SkillError/ValidationError. */
export function loadSkillDir(dirPath: string): LoadedSkill {
  let dir: string;
  try {
    dir = realpathSync.native(dirPath);
  } catch {
    throw new SkillError("E_SKILL_NOT_FOUND", `${dirPath}: no such skill folder`);
  }
  const manifestFile = join(dir, MANIFEST_FILE);
  const st = safeLstat(manifestFile);
  if (!st) throw new SkillError("E_SKILL_NOT_FOUND", `${dirPath}: no ${MANIFEST_FILE} in this folder`);
  if (!st.isFile()) throw new ValidationError("E_MANIFEST_INVALID", [{ file: manifestFile, field: "", message: "must be a regular file (symlinks are not followed)" }]);
  const manifestText = readFileSync(manifestFile, "utf8");
  const manifest = parseManifest(manifestText, manifestFile);
  const skill = buildSkill(manifest, dir, readModules(dir, manifestFile), manifestFile);
  skill.manifestText = manifestText;
  const sigFile = join(dir, SIGNATURE_FILE);
  if (safeLstat(sigFile)?.isFile()) skill.signature = readFileSync(sigFile, "utf8");
  return skill;
}

/** Reads every .js/.mjs file under `dir` (no symlinks, bounded count and size). */
function readModules(dir: string, manifestFile: string): Map<string, string> {
  const files = new Map<string, string>();
  let total = 0;
  const walk = (folder: string, depth: number) => {
    if (depth > MAX_DEPTH) return;
    for (const ent of readdirSync(folder, { withFileTypes: true })) {
      if (ent.name === "node_modules" || ent.name.startsWith(".")) continue;
      const full = join(folder, ent.name);
      if (ent.isDirectory()) walk(full, depth + 1);
      else if (ent.isFile() && /\.m?js$/.test(ent.name)) {
        const source = readFileSync(full, "utf8");
        total += Buffer.byteLength(source);
        if (files.size >= MAX_MODULE_FILES || total > MAX_MODULE_BYTES) {
          throw new ValidationError("E_MANIFEST_INVALID", [
            { file: manifestFile, field: "entry", message: `skill folder holds more than ${MAX_MODULE_FILES} modules or ${MAX_MODULE_BYTES} bytes of code` },
          ]);
        }
        files.set(relative(dir, full).split(sep).join("/"), source);
      }
      // Symlinks and other file types are never read: a module must live in the folder itself.
    }
  };
  walk(dir, 0);
  return files;
}

function safeLstat(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Finds skill folders (those holding skill.yaml) directly under `skillsDir`. */
export function listSkillDirs(skillsDir: string): string[] {
  let entries;
  try {
    entries = readdirSync(skillsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => join(skillsDir, e.name))
    .filter((d) => safeLstat(join(d, MANIFEST_FILE)) !== undefined)
    .sort();
}
