import { z } from "zod";
import { didYouMean, knownKeysAt } from "../util/suggest.js";
import { KNOWN_VARS, unknownVars } from "../util/vars.js";
import { breadthOf } from "./breadth.js";

export const FILE_ACCESS = ["read", "write", "create", "delete", "list"] as const;
export type FileAccess = (typeof FILE_ACCESS)[number];
export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

const noNul = (s: string) => !s.includes("\0");
/** Every `${name}` in the text must be a known variable; the issue names the unknown one. */
function knownVars(text: string, ctx: z.RefinementCtx): void {
  for (const name of unknownVars(text)) {
    ctx.addIssue({ code: "custom", message: `uses the unknown variable \${${name}}; known: ${KNOWN_VARS.map((v) => `\${${v}}`).join(", ")}` });
  }
}

export const filePathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine(noNul, "must not contain NUL bytes")
  .superRefine(knownVars)
  .refine((s) => s.startsWith("/") || s.startsWith("${") || s.startsWith("**"), "must be absolute: start with /, ${workspace}, ${home}, ${skill}, ${tmp} or **")
  .refine((s) => !s.split("/").includes(".."), "must not contain '..' segments")
  .describe("glob over absolute, normalized, symlink-resolved paths; may start with ${workspace}, ${home}, ${skill} or ${tmp}");

export const fileRuleSchema = z
  .strictObject({
    path: filePathSchema,
    access: z.array(z.enum(FILE_ACCESS)).min(1).describe("read | write | create | delete | list"),
  })
  .describe("files the skill may touch through ctx.fs: a path glob and the kinds of access");

export const hostPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\*|\*\.[a-z0-9.-]+|[a-z0-9.-]+|\[[0-9a-f:.]+\]|[0-9a-f:.]+(\/\d{1,3})?)$/i, "must be an exact host, *.suffix, *, an IP address or a CIDR range")
  .describe("an exact host, *.suffix, * (any public host), an IP address or a CIDR range");

export const networkRuleSchema = z
  .strictObject({
    host: hostPattern.describe("exact host, *.suffix, or * (any public host)"),
    port: z.number().int().min(1).max(65535).optional().describe("the only port allowed; default the scheme's port (443 or 80)"),
    methods: z.array(z.enum(HTTP_METHODS)).min(1).optional().describe("HTTP methods allowed; default all"),
    scheme: z.enum(["https", "http"]).optional().describe("https unless stated"),
  })
  .describe("a host the skill may reach with ctx.fetch");

/**
 * One argument pattern: a glob (`*` and `?` stop at `/`, `**` does not; an argument with a `..`
 * segment never matches a glob), a `/regex/`, or a path argument checked like a ctx.fs access.
 */
export const argPatternSchema = z
  .union([
    z.string().max(4096).superRefine(knownVars).describe("a glob, or a /regex/, one argument must match"),
    z
      .strictObject({
        path: filePathSchema.describe("glob over the argument resolved against the working folder (absolute, normalized, symlink-resolved)"),
        access: z.array(z.enum(FILE_ACCESS)).min(1).describe("what the process does with that path: read | write | create | delete | list"),
      })
      .describe("a path argument, checked like a ctx.fs access"),
  ])
  .describe("one allowed argument: a glob, a /regex/, or { path, access }");

export const processRuleSchema = z
  .strictObject({
    command: z
      .string()
      .min(1)
      .max(4096)
      .refine(noNul, "must not contain NUL bytes")
      .refine((c) => c.startsWith("/") || !c.includes("/"), "must be a bare name (resolved through the policy's bin path) or an absolute path")
      .describe("a bare command name (looked up in the policy's binPath) or an absolute path"),
    args: z.array(argPatternSchema).optional().describe("each argument must match one pattern (glob or /regex/, or { path, access }); none: no arguments"),
    network: z.boolean().optional().describe("the process may use the network (only where the trust level's ceiling says so too); default false"),
  })
  .describe("a program the skill may run with ctx.exec, and the arguments it may pass");

export const permissionsSchema = z
  .strictObject({
    files: z.array(fileRuleSchema).default([]).describe("files and folders (ctx.fs); none by default"),
    network: z.array(networkRuleSchema).default([]).describe("hosts (ctx.fetch); none by default"),
    process: z.array(processRuleSchema).default([]).describe("programs (ctx.exec); none by default"),
  })
  .describe("everything the skill may reach; the caller's trust level must cover all of it");

export const limitsSchema = z
  .strictObject({
    memoryMb: z.number().int().min(8).max(8192).optional().describe("isolate heap cap in MiB"),
    timeoutMs: z.number().int().min(10).max(3_600_000).optional().describe("wall clock of one attempt, host calls included"),
    outputBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * 1024)
      .optional()
      .describe("cap on the JSON-encoded output"),
  })
  .describe("resource caps, each at most the trust level's ceiling; default the ceiling");

export const retrySchema = z
  .strictObject({
    attempts: z.number().int().min(1).max(20).default(1).describe("attempts in all, the first included; only retryable failures are retried"),
    initialDelayMs: z.number().int().min(0).max(600_000).default(100).describe("delay before the second attempt"),
    factor: z.number().min(1).max(100).default(2).describe("each delay is the previous one times this"),
    maxDelayMs: z.number().int().min(0).max(3_600_000).default(2000).describe("no delay is longer than this"),
    jitter: z.boolean().default(true).describe("randomize each delay (between 1x and 2x) so callers do not retry in step"),
  })
  .describe("retry with exponential backoff after E_TIMEOUT or a retryable E_SKILL_ERROR");

const jsonSchemaObject = z.record(z.string(), z.unknown());

/** skill.yaml: what a skill is, what it may reach, how it is retried and what replaces it when it fails. */
export const manifestSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,63}$/, "must match ^[a-z][a-z0-9-]{0,63}$ (lower case, digits, dashes)")
      .describe("the skill's name, unique in a host: lower case, digits, dashes"),
    version: z
      .string({ error: (iss) => (typeof iss.input === "number" ? `must be a quoted version string such as "1.0.0", got the number ${iss.input} (YAML reads an unquoted 1.0 as a number)` : undefined) })
      .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, "must be a semver version such as 1.2.0")
      .describe('semver version, quoted in YAML when it could read as a number ("1.0.0")'),
    description: z.string().min(1).max(2048).describe("shown to LLMs as the tool description"),
    entry: z
      .string()
      .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+\.m?js$/, "must be a relative .js or .mjs path inside the skill folder")
      .default("index.js")
      .describe("the ES module whose default export runs, relative to the skill folder"),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits")
      .optional()
      .describe("pins the entry file: the skill is refused when the file's SHA-256 differs"),
    input: jsonSchemaObject.default({ type: "object" }).describe("JSON Schema of the input object; also the tool's input schema"),
    output: jsonSchemaObject.optional().describe("JSON Schema the output must match (E_OUTPUT_INVALID otherwise)"),
    permissions: permissionsSchema.default({ files: [], network: [], process: [] }),
    limits: limitsSchema.default({}),
    retry: retrySchema.default({ attempts: 1, initialDelayMs: 100, factor: 2, maxDelayMs: 2000, jitter: true }),
    fallback: z
      .union([
        z.strictObject({
          skill: z
            .string()
            .regex(/^[a-z][a-z0-9-]{0,63}$/, "must be a skill name")
            .describe("another skill, called with the same input and caller"),
        }),
        z.strictObject({
          command: z
            .array(z.string().min(1).superRefine(knownVars))
            .min(1)
            .describe("a program and its arguments (${workspace}, ${home}, ${skill}, ${tmp} expanded), run under this skill's process permissions"),
        }),
      ])
      .optional()
      .describe("what runs after E_TIMEOUT, E_MEMORY_LIMIT, E_SKILL_ERROR or E_OUTPUT_INVALID: a skill or a command"),
  })
  .superRefine((m, ctx) => {
    m.permissions.files.forEach((rule, i) => {
      const breadth = breadthOf(rule.path);
      if (breadth) {
        const what = breadth === "home" ? "all of ${home}" : "the whole file system";
        ctx.addIssue({ code: "custom", path: ["permissions", "files", i, "path"], message: `"${rule.path}" grants far more than a skill needs (it matches ${what}); name the folder it works in` });
      }
    });
    if (m.fallback && "skill" in m.fallback && m.fallback.skill === m.name) {
      ctx.addIssue({ code: "custom", path: ["fallback", "skill"], message: "a skill cannot be its own fallback" });
    }
    if (m.retry.maxDelayMs < m.retry.initialDelayMs) {
      ctx.addIssue({ code: "custom", path: ["retry", "maxDelayMs"], message: `must be >= initialDelayMs (${m.retry.initialDelayMs})` });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type Permissions = z.infer<typeof permissionsSchema>;
export type FileRule = z.infer<typeof fileRuleSchema>;
export type NetworkRule = z.infer<typeof networkRuleSchema>;
export type ProcessRule = z.infer<typeof processRuleSchema>;
export type ArgPattern = z.infer<typeof argPatternSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type RetryOptions = z.infer<typeof retrySchema>;

/** Turns zod issues into file/field/line issues; given the schema, an unknown field gets a "did you mean". */
export function zodIssues(error: z.ZodError, file: string, lineOf?: (path: readonly PropertyKey[]) => number | undefined, schema?: z.ZodType) {
  return flatten(error.issues).map((iss) => {
    const field = iss.path
      .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
      .join("")
      .replace(/^\./, "");
    let message = iss.message;
    if (iss.code === "unrecognized_keys") {
      const known = schema ? knownKeysAt(schema, iss.path) : [];
      message = `unknown field(s) ${iss.keys.map((k) => `"${k}"${didYouMean(k, known)}`).join(", ")}`;
    }
    // An unknown field's own line, not its parent's.
    const line = lineOf?.(iss.code === "unrecognized_keys" && iss.keys[0] !== undefined ? [...iss.path, iss.keys[0]] : (iss.path as PropertyKey[]));
    return line === undefined ? { file, field, message } : { file, field, message, line };
  });
}

/**
 * A union that failed in every branch: when exactly one branch has the input's shape (no unknown,
 * missing or excluded key at its top), its issues are the precise ones; otherwise the union's
 * own message ("a window has exactly one of allow or deny") says what was meant.
 */
function flatten(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((iss) => {
    if (iss.code !== "invalid_union" || iss.errors.length === 0) return [iss];
    const shaped = iss.errors.filter((branch) => !branch.some((b) => isShapeMismatch(b)));
    if (shaped.length !== 1) return [iss];
    return flatten(shaped[0]!.map((b) => ({ ...b, path: [...iss.path, ...b.path] })));
  });
}

function isShapeMismatch(iss: z.core.$ZodIssue): boolean {
  if (iss.code === "unrecognized_keys" && iss.path.length === 0) return true;
  // zod drops the input from finished issues; a missing key reads "received undefined".
  if (iss.code === "invalid_type" && iss.path.length === 1 && (iss.expected === "never" || iss.message.endsWith("received undefined"))) return true;
  return false;
}
