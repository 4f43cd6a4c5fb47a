#!/usr/bin/env node
// skillbox command line. Needs Node >= 24. The project installs Node 24 as its `node`
// devDependency; started on an older Node (e.g. from a chat CLI's MCP config), this file
// re-runs itself with that Node, passing stdio through untouched.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  const bundled = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(bundled) || process.env.SKILLBOX_REEXEC === "1") {
    process.stderr.write(`skillbox needs Node.js >= 24, this is ${process.version}. Run \`npm ci\` in the skillbox folder (it installs Node 24), or use Node 24.\n`);
    process.exit(2);
  }
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, SKILLBOX_REEXEC: "1" } });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
} else {
  // A reader that went away (`skillbox list | head`) ends the output, not the program with a stack trace.
  process.stdout.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  const { main } = await import("../dist/src/cli/main.js");
  process.exitCode = await main(process.argv.slice(2));
}
