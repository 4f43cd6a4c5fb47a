import { spawn } from "node:child_process";
import { accessSync, chmodSync, constants, lstatSync, mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";

/**
 * OS confinement with bubblewrap (bwrap): detection, and the argument list that puts one process
 * into its own user, PID, IPC, UTS, cgroup and (unless allowed) network namespaces, with a file
 * system built from nothing but what the caller lists. Used for every process a skill starts
 * (ctx.exec, fallback commands) and reusable for the sandbox's worker processes.
 */

export type { SandboxMode } from "../policy/load.js";

export type BwrapStatus = { available: true; path: string } | { available: false; reason: string };

/** What to tell a user who asked for `required` on a machine without a working bwrap. */
export const BWRAP_INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) and make sure unprivileged user namespaces are enabled";

export interface DetectOptions {
  /** the bwrap executable to use; when absent it is looked up in `PATH` */
  bwrapPath?: string;
  /** search path for bwrap; @default process.env.PATH */
  PATH?: string;
  /** how long the probe run may take; @default 10000 */
  probeTimeoutMs?: number;
}

const probes = new Map<string, Promise<BwrapStatus>>();

function findExecutable(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * Whether bwrap is present AND can set up the namespaces here (containers often forbid user
 * namespaces): it runs `true` inside a minimal confinement once per bwrap path and caches the answer.
 */
export function detectBwrap(opts: DetectOptions = {}): Promise<BwrapStatus> {
  const path = opts.bwrapPath ?? findExecutable("bwrap", opts.PATH ?? process.env["PATH"] ?? "");
  if (path === undefined) return Promise.resolve({ available: false, reason: "bwrap was not found in PATH" });
  let probe = probes.get(path);
  if (!probe) {
    probe = runProbe(path, opts.probeTimeoutMs ?? 10_000);
    probes.set(path, probe);
  }
  return probe;
}

/** Forgets cached probe results (tests that swap bwrap binaries). */
export function resetBwrapDetection(): void {
  probes.clear();
}

function runProbe(path: string, timeoutMs: number): Promise<BwrapStatus> {
  const args = [...bwrapArgs({ binds: [], network: false, cwd: "/" }), "--", "true"];
  return new Promise((resolve) => {
    let stderr = "";
    let child;
    try {
      child = spawn(path, args, { stdio: ["ignore", "ignore", "pipe"], env: { PATH: "/usr/bin:/bin" } });
    } catch (err) {
      resolve({ available: false, reason: `${path} cannot be started: ${(err as Error).message}` });
      return;
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stderr.on("data", (c: Buffer) => {
      if (stderr.length < 2000) stderr += c.toString("utf8");
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ available: false, reason: `${path} cannot be started: ${err.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ available: true, path });
      else resolve({ available: false, reason: `${path} cannot set up a sandbox here (${signal ?? `exit ${code}`}${stderr.trim() ? `: ${stderr.trim().split("\n")[0]}` : ""})` });
    });
  });
}

/** One path of the host made visible inside, at the same place. */
export interface Bind {
  path: string;
  /** read-write when true, read-only otherwise */
  write: boolean;
}

/**
 * A path inside a bound area that the process must not see: replaced by an empty file or folder,
 * or (`replica`) by a prepared read-only folder of empty placeholders with the same names (one
 * mount for a folder whose files are all hidden). `restore` shows a host path again inside a
 * replica (its subfolders that are not hidden). Applied in the order given.
 */
export type Mask = { path: string; kind: "file" | "dir" } | { path: string; kind: "replica"; source: string } | { path: string; kind: "restore"; write: boolean };

export interface ConfineSpec {
  /** host paths shown at the same place (folders or files); applied shortest first, so deeper ones win */
  binds: Bind[];
  /** paths hidden inside the binds (applied after every bind) */
  masks?: Mask[];
  /** paths inside writable binds made read-only again (applied after binds, before masks) */
  readOnly?: string[];
  /** a host folder holding the replicas of `masks`, removed after the run */
  scratch?: string;
  /** share the host's network; otherwise the process has only its own loopback */
  network: boolean;
  /** working folder inside (must be visible) */
  cwd: string;
  /** extra system paths shown read-only when they exist; @default SYSTEM_PATHS */
  systemPaths?: readonly string[];
  /** files of /etc shown read-only when they exist; @default ETC_FILES (+ resolv.conf with network) */
  etcFiles?: readonly string[];
}

/**
 * System folders every program needs to start: binaries and shared libraries, read-only.
 * /bin, /sbin, /lib* are symlinks into /usr on merged-/usr systems and are recreated as such.
 */
export const SYSTEM_PATHS: readonly string[] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * Only the parts of /etc that dynamic linking, locale, time and TLS need. Not passwd, group,
 * shadow, hostname or anything with secrets or account names: the process sees numeric ids.
 * /etc/alternatives holds the targets of many /usr/bin symlinks on Debian (awk, editor, ...).
 */
export const ETC_FILES: readonly string[] = [
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives",
  "/etc/localtime",
  "/etc/nsswitch.conf",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/ca-certificates.conf",
  "/etc/hosts",
  "/etc/gai.conf",
  "/etc/mime.types",
];

let empty: string | undefined;

/**
 * An empty read-only file shown in place of a hidden one: it reads as empty (tools such as git
 * that open every file they know of keep working) and says nothing of what it covers. Made once
 * per process in a private folder, removed at exit.
 */
function emptyFile(): string {
  if (empty === undefined) {
    const dir = mkdtempSync(`${tmpdir()}/skillbox-mask-`);
    const file = `${dir}/empty`;
    writeFileSync(file, "", { mode: 0o444 });
    chmodSync(dir, 0o555);
    process.once("exit", () => {
      try {
        chmodSync(dir, 0o700);
        rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    });
    empty = file;
  }
  return empty;
}

function kindOf(path: string): "symlink" | "present" | "absent" {
  try {
    return lstatSync(path).isSymbolicLink() ? "symlink" : "present";
  } catch {
    return "absent";
  }
}

/**
 * The bwrap options (everything before `--` and the command) for one confined process. Pure apart
 * from looking at which system paths exist. The process gets:
 * - new user, PID, IPC, UTS and cgroup namespaces, and a new network namespace unless `network`;
 * - its own session (no terminal injection with TIOCSTI) and death when its parent dies;
 * - /usr and friends read-only, a fresh /proc and a minimal /dev, an empty /tmp;
 * - the listed binds, then read-only overrides, then masks; nothing else of the host.
 */
export function bwrapArgs(spec: ConfineSpec): string[] {
  const a: string[] = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"];
  if (!spec.network) a.push("--unshare-net");
  // Inside, the process is "nobody" with no capabilities, whoever started the host.
  a.push("--uid", "65534", "--gid", "65534", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "skillbox");
  for (const p of spec.systemPaths ?? SYSTEM_PATHS) {
    const k = kindOf(p);
    if (k === "symlink") a.push("--symlink", readlinkSync(p), p);
    else if (k === "present") a.push("--ro-bind", p, p);
  }
  const etc = [...(spec.etcFiles ?? ETC_FILES), ...(spec.network ? ["/etc/resolv.conf"] : [])];
  for (const p of etc) if (kindOf(p) !== "absent") a.push("--ro-bind", p, p);
  a.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  const binds = [...spec.binds].sort((x, y) => x.path.length - y.path.length || x.path.localeCompare(y.path));
  for (const b of binds) a.push(b.write ? "--bind" : "--ro-bind", b.path, b.path);
  for (const p of spec.readOnly ?? []) a.push("--ro-bind", p, p);
  for (const m of spec.masks ?? []) {
    if (m.kind === "dir") a.push("--tmpfs", m.path, "--remount-ro", m.path);
    else if (m.kind === "replica") a.push("--ro-bind", m.source, m.path);
    else if (m.kind === "restore") a.push(m.write ? "--bind" : "--ro-bind", m.path, m.path);
    else a.push("--ro-bind", emptyFile(), m.path);
  }
  a.push("--chdir", spec.cwd);
  return a;
}
