import { InputInvalidError, type SkillError } from "../errors.js";
import type { LoadedSkill } from "../manifest/model.js";
import { jsonDepth, MAX_JSON_DEPTH, tooDeepMessage } from "../util/json-depth.js";

/**
 * Stage 3, input: a JSON object, within the size and depth caps, valid for the skill's input schema.
 * Returns the error, or the input's JSON (made once here, reused for the worker).
 */
export function checkInput(skill: LoadedSkill, input: unknown, maxInputBytes: number): SkillError | string {
  // Before anything walks it (JSON.stringify included, which recurses): nothing downstream goes past this depth.
  if (jsonDepth(input) === Infinity) return new InputInvalidError(tooDeepMessage("input", MAX_JSON_DEPTH));
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
