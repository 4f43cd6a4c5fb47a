import type { FileAccess } from "../manifest/schema.js";
import type { Decision, Grant } from "./model.js";
import { CONTROL_PLANE_RULE, controlPlaneObjection } from "./control-plane.js";
import { TMP_PLACEHOLDER, type CompiledFileRule } from "./match.js";

export type { Decision } from "./model.js";

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

/**
 * Pure: may this grant perform `access` on `realPath` (absolute, normalized, symlink-resolved)?
 * Deny rules first, then the manifest's declared rules, then the trust level's ceiling.
 * `lexicalPath` (normalized, before symlink resolution) is checked against deny rules too.
 */
export function checkFileAccess(grant: Grant, realPath: string, access: FileAccess, tmpDir: string, lexicalPath = realPath): Decision {
  return checkPathAgainst(grant, grant.files, realPath, access, tmpDir, lexicalPath);
}

/**
 * The same check with another set of declared rules (a process's `{ path, access }` argument
 * patterns declare their own): control plane, deny rules, declared, ceiling, in that order.
 */
export function checkPathAgainst(grant: Grant, declaredRules: readonly CompiledFileRule[], realPath: string, access: FileAccess, tmpDir: string, lexicalPath = realPath): Decision {
  if (realPath.includes("\0") || !realPath.startsWith("/")) return { allowed: false, rule: "path", reason: "not an absolute path" };
  for (const p of realPath === lexicalPath ? [realPath] : [realPath, lexicalPath]) {
    const objection = controlPlaneObjection(grant.controlPlane, p, access);
    if (objection) return { allowed: false, rule: CONTROL_PLANE_RULE, reason: objection };
  }
  for (const d of grant.denyFiles) {
    if (d.test(realPath) || d.test(lexicalPath)) return { allowed: false, rule: `deny:${d.pattern}`, reason: `matches deny rule "${d.pattern}"` };
  }
  if (inside(realPath, TMP_PLACEHOLDER)) return { allowed: false, rule: "path", reason: "reserved path" };
  const inTmp = inside(realPath, tmpDir);
  const subject = inTmp ? TMP_PLACEHOLDER + realPath.slice(tmpDir.length) : realPath;
  const declared = declaredRules.find((r) => r.access.has(access) && r.test(subject));
  if (!declared) {
    return { allowed: false, rule: "manifest", reason: `the manifest of ${grant.skill} declares no ${access} access to it` };
  }
  if (inTmp) return { allowed: true, rule: declared.label };
  const ceiling = grant.ceilingFiles.find((r) => r.access.has(access) && r.test(realPath));
  if (!ceiling) {
    return { allowed: false, rule: `ceiling:${grant.trust}`, reason: `trust level "${grant.trust}" does not allow ${access} access to it` };
  }
  return { allowed: true, rule: declared.label };
}
