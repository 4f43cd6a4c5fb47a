import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bwrapArgs, type Bind } from "../capabilities/confine.js";

/** The package's root: dist/src/sandbox/ is three levels below it. */
const PACKAGE_ROOT = realpathSync(fileURLToPath(new URL("../../../", import.meta.url)));

/** Where `name` resolves from the package (its own node_modules, else a parent's, as Node looks). */
function moduleDir(name: string): string | undefined {
  for (let dir = PACKAGE_ROOT; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(candidate)) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * What a worker process needs to see, read-only, besides the system libraries bwrapArgs always
 * shows: the node binary itself, the package's compiled code and package.json (it marks the
 * code as ES modules), the prelude, and isolated-vm with the loader of its native build.
 * Nothing of the workspace, the home folder, the state folder or the host's /tmp.
 */
export function workerBinds(node: string): Bind[] {
  const paths = [realpathSync(node), join(PACKAGE_ROOT, "package.json"), join(PACKAGE_ROOT, "dist", "src"), join(PACKAGE_ROOT, "sandbox"), moduleDir("isolated-vm"), moduleDir("node-gyp-build")];
  return paths.filter((p): p is string => p !== undefined && existsSync(p)).map((path) => ({ path, write: false }));
}

/**
 * A `SupervisorOptions.wrap` that starts each worker under bubblewrap: no network, its own user,
 * PID, IPC, UTS and cgroup namespaces, dying with the host, seeing only `workerBinds`. The node
 * binary runs by its resolved path (a symlink's target may lie outside what is shown).
 */
export function bwrapWorker(bwrap: string): (node: string, args: string[]) => { command: string; args: string[] } {
  return (node, args) => {
    const real = realpathSync(node);
    return { command: bwrap, args: [...bwrapArgs({ binds: workerBinds(real), network: false, cwd: "/" }), "--", real, ...args] };
  };
}
