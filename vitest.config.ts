import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    // isolated-vm needs --no-node-snapshot in any process that loads it.
    execArgv: ["--no-node-snapshot"],
    // Files share their worker processes instead of a fresh one (and a fresh import of dist/ and
    // its dependencies) per file: a third of the run's time on a loaded machine. Test files
    // therefore restore what they change in the process (cwd, environment variables).
    isolate: false,
    // Vitest's default for `run` is cores - 1, i.e. one file at a time on a 2-core machine; most
    // files spend their time waiting for sandbox workers and child processes, so use every core.
    maxWorkers: "100%",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
