/** Stable error codes (DESIGN.md, "Results and errors"). Tests assert on these, never on messages. */
export const ERROR_CODES = [
  "E_SKILL_NOT_FOUND",
  "E_MANIFEST_INVALID",
  "E_POLICY_INVALID",
  "E_INTEGRITY",
  "E_INPUT_INVALID",
  "E_OUTPUT_INVALID",
  "E_PERMISSION_DENIED",
  "E_RATE_LIMITED",
  "E_APPROVAL_REQUIRED",
  "E_TIMEOUT",
  "E_MEMORY_LIMIT",
  "E_SKILL_ERROR",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The one error type of skillbox. `code` is stable; `message` says what was expected, found, and how to fix it. */
export class SkillError extends Error {
  override readonly name = "SkillError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? code === "E_TIMEOUT";
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message, retryable: this.retryable }
      : { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** Codes after which the declared fallback may run (DESIGN.md). */
export const FALLBACK_CODES: ReadonlySet<ErrorCode> = new Set(["E_TIMEOUT", "E_MEMORY_LIMIT", "E_SKILL_ERROR", "E_OUTPUT_INVALID"]);

/** CLI exit code for an error code: 1 run-time failure, 2 bad request/config, 3 refused by policy. */
export function exitCodeFor(code: ErrorCode): 1 | 2 | 3 {
  switch (code) {
    case "E_SKILL_ERROR":
    case "E_TIMEOUT":
    case "E_MEMORY_LIMIT":
    case "E_OUTPUT_INVALID":
      return 1;
    case "E_PERMISSION_DENIED":
    case "E_RATE_LIMITED":
    case "E_APPROVAL_REQUIRED":
      return 3;
    default:
      return 2;
  }
}

/** One problem found while validating a file: which file, which field, why, and where. */
export interface Issue {
  file: string;
  field: string;
  message: string;
  line?: number;
}

export function formatIssue(issue: Issue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return `${where}: ${issue.field || "(root)"}: ${issue.message}`;
}

/** Thrown for an invalid manifest or policy: carries every issue at once. */
export class ValidationError extends SkillError {
  readonly issues: Issue[];
  constructor(code: "E_MANIFEST_INVALID" | "E_POLICY_INVALID" | "E_INTEGRITY", issues: Issue[]) {
    super(code, issues.map(formatIssue).join("\n"), { details: { issues } });
    this.issues = issues;
  }
}

/** Any thrown value as a SkillError: SkillErrors pass through, anything else is the skill's failure (not retryable). */
export function asSkillError(err: unknown): SkillError {
  if (err instanceof SkillError) return err;
  return new SkillError("E_SKILL_ERROR", err instanceof Error ? err.message : String(err), { retryable: false });
}
