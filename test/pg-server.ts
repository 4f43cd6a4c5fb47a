import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export type PgServer =
  | {
      url: string;
      stop(): void;
      /** stops the server abruptly (-m immediate) and starts it again; absent for SKILLBOX_TEST_PG_URL */
      restart?(): void;
      /** the server's process ids (postmaster and its children), to freeze it with SIGSTOP */
      pids?(): number[];
    }
  | { skip: string };

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

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

/**
 * A real PostgreSQL server for the tests: SKILLBOX_TEST_PG_URL if set, else a throwaway cluster
 * started from Debian's postgresql binaries (as the postgres user when running as root).
 * Where neither is possible, says why, so the tests skip visibly.
 */
export async function startPostgres(): Promise<PgServer> {
  const given = process.env["SKILLBOX_TEST_PG_URL"];
  if (given) return { url: given, stop: () => undefined };
  const root = "/usr/lib/postgresql";
  const version = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))[0]
    : undefined;
  if (!version) return { skip: "no PostgreSQL server binaries (install Debian's postgresql package, as .ci/run does)" };
  const bin = join(root, version, "bin");
  const dir = mkdtempSync(join(tmpdir(), "skillbox-pg-"));
  const asRoot = process.getuid?.() === 0;
  let run = (cmd: string, args: string[]) => execFileSync(join(bin, cmd), args, { stdio: "pipe" });
  if (asRoot) {
    const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    if (uid.status !== 0) return { skip: "running as root and there is no postgres user to run the server as" };
    chownSync(dir, Number(uid.stdout), Number(gid.stdout));
    run = (cmd, args) => execFileSync("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args], { stdio: "pipe" });
  }
  const port = await freePort();
  const data = join(dir, "data");
  const start = () => run("pg_ctl", ["-D", data, "-w", "-t", "30", "-l", join(dir, "server.log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  try {
    run("initdb", ["-D", data, "--auth=trust", "-U", "postgres", "--no-sync"]);
    start();
  } catch (err) {
    return { skip: `could not start PostgreSQL ${version}: ${String((err as { stderr?: Buffer }).stderr ?? err).split("\n")[0]}` };
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "stop"]);
      } catch {
        /* already stopped */
      }
    },
    restart: () => {
      run("pg_ctl", ["-D", data, "-m", "immediate", "stop"]);
      start();
    },
    pids: () => {
      const main = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      return [main, ...childrenOf(main)];
    },
  };
}

/** A new empty database on a running test server (`prefix` names it), so each test starts clean. */
export async function freshDatabase(server: PgServer, prefix = "t"): Promise<string> {
  if ("skip" in server) throw new Error(server.skip);
  const name = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(server.url);
  u.pathname = `/${name}`;
  return u.toString();
}
