/**
 * `skillbox schema manifest|policy`: the JSON Schema of a skill manifest or a policy file, made
 * from the same zod schemas that validate them (field docs from their `.describe()`), for editors
 * (`# yaml-language-server: $schema=...`) and CI checks.
 */
import { z } from "zod";
import { manifestSchema } from "../manifest/schema.js";
import { policySchema } from "../policy/schema.js";
import { type Out, parse, UsageError } from "./common.js";

export const SCHEMA_KINDS = ["manifest", "policy"] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

const TITLES: Record<SchemaKind, string> = {
  manifest: "skillbox skill manifest (skill.yaml)",
  policy: "skillbox policy (skillbox.policy.yaml)",
};

/**
 * The JSON Schema of what a user writes (defaults make fields optional, not required). Checks
 * JSON Schema cannot say (variables, breadth, regex syntax) are left to `skillbox validate`.
 */
export function jsonSchemaOf(kind: SchemaKind): Record<string, unknown> {
  const schema = kind === "manifest" ? manifestSchema : policySchema;
  return { title: TITLES[kind], ...z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) };
}

export function cmdSchema(args: string[], io: Out): number {
  const { positionals } = parse(args, {}, "schema");
  const [kind, ...extra] = positionals;
  if (!SCHEMA_KINDS.includes(kind as SchemaKind) || extra.length > 0) {
    throw new UsageError(`skillbox schema: give one of ${SCHEMA_KINDS.join(", ")}, e.g. \`skillbox schema manifest > skill.schema.json\``);
  }
  io.out(JSON.stringify(jsonSchemaOf(kind as SchemaKind), null, 2));
  return 0;
}
