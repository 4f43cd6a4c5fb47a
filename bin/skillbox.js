#!/usr/bin/env node
// skillbox command line. Needs Node >= 24 (isolated-vm 7's native build is made for it).
// In a clone of the repository, `npm ci` installs Node 24 as the `node` devDependency: started on
// an older Node (e.g. from a chat CLI's MCP config), this file re-runs itself with that Node,
// passing stdio through untouched. An installed package has no such Node: it says what to do.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const REQUIRED = 24;
const major = Number(process.versions.node.split(".")[0]);
if (major < REQUIRED) {
  const bundled = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(bundled) || process.env.SKILLBOX_REEXEC === "1") {
    // runtime.js uses only Node built-ins, so it loads on any Node this old file runs on.
    const { runtimeProblem } = await import("../dist/src/runtime.js");
    process.stderr.write(`${runtimeProblem() ?? `skillbox needs Node.js >= ${REQUIRED}, this is ${process.version}.`}\n`);
    process.exit(2);
  }
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, SKILLBOX_REEXEC: "1" } });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1)));
} else {
  // A reader that went away (`skillbox list | head`) ends the output, not the program with a stack trace.
  // (`skillbox mcp` replaces this: there a broken stdout means the client left, and it shuts down cleanly.)
  process.stdout.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  const { main } = await import("../dist/src/cli/main.js");
  process.exitCode = await main(process.argv.slice(2));
}
