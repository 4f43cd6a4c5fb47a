/** The loaded-skill type on its own, so the loader and signature checks need not import each other. */
import type { Manifest } from "./schema.js";

/** A skill ready to run: validated manifest, its module sources (read once, at load), compiled validators. */
export interface LoadedSkill {
  manifest: Manifest;
  /** Real path of the skill folder, or a pseudo path for skills registered from memory. */
  dir: string;
  /** Module sources by path relative to `dir` (forward slashes). Only these can be imported. */
  files: ReadonlyMap<string, string>;
  entrySha256: string;
  /** the manifest as written (for signatures); undefined for skills registered from memory */
  manifestText?: string;
  /** the raw skill.sig, if the folder has one */
  signature?: string;
  validateInput(value: unknown): string[];
  validateOutput(value: unknown): string[];
}
