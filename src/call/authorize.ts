import { PermissionDeniedError, type SkillError, SkillNotFoundError } from "../errors.js";
import type { LoadedSkill } from "../manifest/model.js";
import { authorize, describeNeeds } from "../policy/authorize.js";
import type { ControlPlane } from "../policy/control-plane.js";
import type { LivePolicy } from "../policy/live.js";
import type { AuthorizeResult, Grant, TrustLevel, UncoveredNeed } from "../policy/model.js";

/** A skill's grant at a trust level under one policy version, computed once and kept with that version. */
export function grantFor(live: LivePolicy, skill: LoadedSkill, trust: TrustLevel, vars: { workspace: string; home: string; controlPlane?: ControlPlane | undefined }): AuthorizeResult {
  const key = `${skill.manifest.name}\0${trust}`;
  let r = live.grants.get(key);
  if (!r) {
    r = authorize(skill.manifest, {
      trust,
      policy: live.policy,
      vars: { workspace: vars.workspace, home: vars.home, skill: skill.dir },
      ...(vars.controlPlane ? { controlPlane: vars.controlPlane } : {}),
    });
    live.grants.set(key, r);
  }
  return r;
}

/** Forgets the cached grants of a skill whose definition changed. */
export function dropGrants(live: LivePolicy, name: string): void {
  for (const key of live.grants.keys()) if (key.startsWith(name + "\0")) live.grants.delete(key);
}

/** Stage 3, authorize: the grant, or the refusal naming every need the trust level does not cover. */
export function authorizeCall(
  live: LivePolicy,
  skill: LoadedSkill,
  trust: TrustLevel,
  vars: { workspace: string; home: string; controlPlane?: ControlPlane | undefined },
): { ok: true; grant: Grant } | { ok: false; error: SkillError; needs: UncoveredNeed[] } {
  const auth = grantFor(live, skill, trust, vars);
  if (auth.ok) return auth;
  return { ok: false, needs: auth.needs, error: new PermissionDeniedError(describeNeeds(skill.manifest.name, trust, auth.needs), { details: { needs: auth.needs } }) };
}

/** "No such skill", listing only the skills this trust level may run (never what it may not see). */
export function notFound(
  live: LivePolicy,
  skills: readonly LoadedSkill[],
  name: string,
  trust: TrustLevel,
  vars: { workspace: string; home: string; controlPlane?: ControlPlane | undefined },
): SkillError {
  const visible = skills
    .filter((s) => grantFor(live, s, trust, vars).ok)
    .map((s) => s.manifest.name)
    .sort();
  return new SkillNotFoundError(`no skill named "${name}"; available at trust level "${trust}": ${visible.join(", ") || "none"}`);
}
