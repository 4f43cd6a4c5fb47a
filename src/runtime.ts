import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** The Node.js major version skillbox runs on (isolated-vm 7's native build is made for it). */
export const REQUIRED_NODE_MAJOR = 24;

/** The runtime cannot run skills: wrong Node.js, or isolated-vm's native build does not load. */
export class UnsupportedRuntimeError extends Error {
  override readonly name = "UnsupportedRuntimeError";
}

const packageRoot = fileURLToPath(new URL("../../", import.meta.url));
let checked: string | null | undefined;

/**
 * Checks, once per process and within a second, what every sandbox worker will need: Node.js
 * >= 24 and a loadable isolated-vm native build. Returns the problem with how to fix it (for a
 * clone of the repository and for an installed package), or null. Without this, a host on the
 * wrong Node would start workers that crash and restart forever.
 */
export function runtimeProblem(): string | null {
  if (checked !== undefined) return checked;
  const major = Number(process.versions.node.split(".")[0]);
  // A clone has its sources beside dist/; an installed package ships dist/ only.
  const clone = existsSync(`${packageRoot}src`) && existsSync(`${packageRoot}package-lock.json`);
  const fix = clone
    ? `In this clone (${packageRoot}), run \`npm ci\`: it installs Node ${REQUIRED_NODE_MAJOR} as a devDependency, which \`npx skillbox\` and npm scripts use.`
    : `Install Node.js ${REQUIRED_NODE_MAJOR} (e.g. \`nvm install ${REQUIRED_NODE_MAJOR}\`, or run through \`npx -y -p node@${REQUIRED_NODE_MAJOR} node ${packageRoot}bin/skillbox.js …\`), then reinstall skillbox with it (\`npm rebuild isolated-vm\` or \`npm ci\`) so isolated-vm is built for it.`;
  if (!(major >= REQUIRED_NODE_MAJOR)) {
    checked = `skillbox needs Node.js ${REQUIRED_NODE_MAJOR} or newer; this is ${process.version}. ${fix}`;
    return checked;
  }
  try {
    createRequire(import.meta.url)("isolated-vm");
    checked = null;
  } catch (err) {
    const why = ((err as Error).message ?? String(err)).split("\n")[0];
    checked = `skillbox cannot load isolated-vm's native build on Node ${process.version} (${why}). ${fix}`;
  }
  return checked;
}

/** Throws UnsupportedRuntimeError when runtimeProblem() finds one. */
export function assertRuntime(): void {
  const problem = runtimeProblem();
  if (problem !== null) throw new UnsupportedRuntimeError(problem);
}
