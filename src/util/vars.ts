/** Values of the `${...}` variables usable in manifest and policy paths. */
export interface PathVars {
  workspace: string;
  home: string;
  skill?: string;
  tmp?: string;
}

const VAR = /\$\{([a-z]+)\}/g;

/** Expands `${workspace}`, `${home}`, `${skill}`, `${tmp}`. Unknown variables are an error, never left in place. */
export function expandVars(text: string, vars: PathVars): string {
  return text.replace(VAR, (_m, name: string) => {
    const value = (vars as unknown as Record<string, string | undefined>)[name];
    if (value === undefined) throw new Error(`unknown or unavailable variable \${${name}}`);
    return value;
  });
}

export const KNOWN_VARS = ["workspace", "home", "skill", "tmp"];

/** Names of variables used in `text` that are not known. */
export function unknownVars(text: string): string[] {
  return [...text.matchAll(VAR)].map((m) => m[1] ?? "").filter((n) => !KNOWN_VARS.includes(n));
}
