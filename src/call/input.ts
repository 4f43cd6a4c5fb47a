import { InputInvalidError, type SkillError } from "../errors.js";
import type { LoadedSkill } from "../manifest/model.js";

/**
 * Stage 2, input: a JSON object, within the size cap, valid for the skill's input schema.
 * Returns the error, or the input's JSON (made once here, reused for the worker).
 */
export function checkInput(skill: LoadedSkill, input: unknown, maxInputBytes: number): SkillError | string {
  let json: string | undefined;
  try {
    json = JSON.stringify(input);
  } catch (err) {
    return new InputInvalidError(`input is not JSON: ${(err as Error).message}`);
  }
  if (json === undefined || input === null || typeof input !== "object" || Array.isArray(input)) {
    return new InputInvalidError(`input must be a JSON object, got ${json === undefined ? typeof input : json.slice(0, 40)}`);
  }
  if (Buffer.byteLength(json) > maxInputBytes) return new InputInvalidError(`input is ${Buffer.byteLength(json)} bytes, more than the cap of ${maxInputBytes}`);
  const errors = skill.validateInput(input);
  if (errors.length > 0) return new InputInvalidError(`${skill.manifest.name}: invalid input: ${errors.join("; ")}`, { details: { errors } });
  return json;
}
