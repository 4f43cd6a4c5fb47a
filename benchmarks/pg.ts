/** A throwaway PostgreSQL for the state benchmarks (as test/pg-server.ts starts one), or SKILLBOX_BENCH_PG_URL. */
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Pg = { url: string; stop(): void } | { skip: string };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export async function startPostgres(): Promise<Pg> {
  const given = process.env["SKILLBOX_BENCH_PG_URL"];
  if (given) return { url: given, stop: () => undefined };
  const root = "/usr/lib/postgresql";
  const version = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))[0]
    : undefined;
  if (!version) return { skip: "no PostgreSQL server binaries" };
  const bin = join(root, version, "bin");
  const dir = mkdtempSync(join(tmpdir(), "skillbox-bench-pg-"));
  let run = (cmd: string, args: string[]) => execFileSync(join(bin, cmd), args, { stdio: "pipe" });
  if (process.getuid?.() === 0) {
    const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    if (uid.status !== 0) return { skip: "running as root without a postgres user" };
    chownSync(dir, Number(uid.stdout), Number(gid.stdout));
    run = (cmd, args) => execFileSync("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args], { stdio: "pipe" });
  }
  const port = await freePort();
  const data = join(dir, "data");
  try {
    run("initdb", ["-D", data, "--auth=trust", "-U", "postgres", "--no-sync"]);
    // fsync stays on: the figures are for a real server, not a test cluster.
    run("pg_ctl", ["-D", data, "-w", "-t", "30", "-l", join(dir, "server.log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, "start"]);
  } catch (err) {
    return { skip: `could not start PostgreSQL: ${String((err as { stderr?: Buffer }).stderr ?? err).split("\n")[0]}` };
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "fast", "stop"]);
      } catch {
        /* already stopped */
      }
    },
  };
}
