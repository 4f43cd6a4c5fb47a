#!/usr/bin/env node
// skillbox command line. Needs Node >= 24 (the project installs it as the `node` devDependency,
// so `npx skillbox` and npm scripts use it).
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(`skillbox needs Node.js >= 24, this is ${process.version}. Run it as \`npx skillbox\` in the project (npm puts node@24 first on PATH).\n`);
  process.exit(2);
}
const { main } = await import("../dist/src/cli/main.js");
process.exitCode = await main(process.argv.slice(2));
