import { realpathSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { ControlPlane } from "../policy/control-plane.js";

/** Policy file names a host picks up from its workspace by itself (protected even before they exist). */
export const IMPLICIT_POLICY_NAMES = ["skillbox.policy.yaml", "skillbox.policy.yml", "skillbox.policy.toml"];

export interface ControlPlaneSources {
  workspace: string;
  /** the policy file in force, when there is one */
  policyFile?: string | undefined;
  /** the skills folder(s) the host loads and the folders of skills registered from elsewhere */
  skillDirs: readonly string[];
  /** the state folder (approvals, rate buckets, policy versions) */
  stateDir?: string | undefined;
  /** security log file(s) */
  auditFiles: readonly string[];
  /** key files the policy names */
  keyFiles?: readonly string[];
}

/** The real path of `p`; a path that does not exist (yet) resolves through its nearest existing ancestor. */
export function realPathOf(p: string): string {
  let dir = resolve(p);
  const rest: string[] = [];
  for (let i = 0; i < 256; i++) {
    try {
      return resolve(realpathSync.native(dir), ...rest);
    } catch {
      if (dir === "/") break;
      rest.unshift(basename(dir));
      dir = dirname(dir);
    }
  }
  return resolve(p);
}

/**
 * A host's control plane. The value is mutable in place (`refresh`) so the grants already handed
 * out see skills registered later: a grant holds a reference, never a copy.
 */
export class HostControlPlane implements ControlPlane {
  protect: string[] = [];
  hide: string[] = [];

  constructor(sources: ControlPlaneSources) {
    this.refresh(sources);
  }

  refresh(s: ControlPlaneSources): void {
    const protect = new Set<string>();
    const both = (p: string) => {
      protect.add(resolve(p));
      protect.add(realPathOf(p));
    };
    if (s.policyFile) both(s.policyFile);
    for (const n of IMPLICIT_POLICY_NAMES) both(resolve(s.workspace, n));
    for (const d of s.skillDirs) both(d);
    for (const k of s.keyFiles ?? []) both(k);
    const hide = new Set<string>();
    for (const p of [...(s.stateDir ? [s.stateDir] : []), ...s.auditFiles]) {
      hide.add(resolve(p));
      hide.add(realPathOf(p));
    }
    this.protect = [...protect].sort();
    this.hide = [...hide].sort();
  }
}
