/** Watching the skills folder and the policy file, debounced, for SkillHost.watch(). */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

export type WatchTarget = "skills" | "policy";

export interface WatchSpec {
  skillsDir: string;
  policyFile: string | undefined;
  /** reloads what changed; returns whether something new is live */
  reload: (what: WatchTarget) => boolean;
  onChange: (what: WatchTarget) => void;
  debounceMs: number;
  warn: (message: string) => void;
}

/** Starts the watchers; returns a stop function. A path that cannot be watched is reported, not fatal. */
export function watchSources(spec: WatchSpec): () => void {
  const watchers: FSWatcher[] = [];
  const timers = new Map<string, NodeJS.Timeout>();
  const later = (what: WatchTarget) => {
    clearTimeout(timers.get(what));
    timers.set(
      what,
      setTimeout(() => {
        if (spec.reload(what)) spec.onChange(what);
      }, spec.debounceMs),
    );
  };
  const add = (path: string, opts: { recursive?: boolean }, fn: (name: string | null) => void) => {
    try {
      const w = watch(path, opts, (_e, name) => fn(name));
      w.on("error", () => undefined);
      watchers.push(w);
    } catch {
      spec.warn(`skillbox: cannot watch ${path}; changes there are not picked up`);
    }
  };
  add(spec.skillsDir, { recursive: true }, () => later("skills"));
  if (spec.policyFile) {
    // Editors often replace the file: watch its folder and pick out its name.
    const file = spec.policyFile;
    add(dirname(file), {}, (name) => {
      if (name === null || name === basename(file)) later("policy");
    });
  }
  return () => {
    for (const t of timers.values()) clearTimeout(t);
    for (const w of watchers) w.close();
  };
}
