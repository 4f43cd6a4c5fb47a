import type { Code } from "./isolate.js";
import { PreparedIsolate } from "./isolate.js";

interface Slot {
  isolate: Promise<PreparedIsolate>;
  ready: boolean;
}

/**
 * Isolates prepared ahead, per pool key (one skill's code at one memory cap), each used by one
 * attempt only. Bounded: at most `perSkill` per key and `max` in all; keys are kept in
 * least-recently-used order and the oldest key gives up its places first. A key that missed
 * (its call had to prepare an isolate on its own path) gets one place, not `perSkill`: rotating
 * over many skills must not build isolates that are evicted unused.
 */
export class IsolatePool {
  /** Map order is the LRU order: a key is moved to the end each time it is used. */
  private readonly slots = new Map<string, Slot[]>();
  private count = 0;

  constructor(
    private readonly perSkill: number,
    private readonly max: number,
    /** told whenever an isolate becomes ready, so the supervisor can route calls to it */
    private readonly onReady: () => void,
  ) {}

  /** A prepared isolate for this key, if one is waiting (ready or on its way). */
  take(key: string): Promise<PreparedIsolate> | undefined {
    const list = this.slots.get(key);
    const slot = list?.shift();
    if (!list) return undefined;
    this.touch(key, list);
    if (!slot) return undefined;
    this.count--;
    return slot.isolate;
  }

  /** Tops this key up (to `perSkill` after a hit, to one after a miss), within the bound. */
  refill(code: Code, memoryMb: number, key: string, hit: boolean): void {
    if (this.perSkill <= 0 || this.max <= 0) return;
    const want = hit ? this.perSkill : 1;
    let list = this.slots.get(key);
    if (!list) {
      list = [];
      this.slots.set(key, list);
    }
    while (list.length < want) {
      if (this.count >= this.max && !this.evictOldest(key)) return;
      const slot: Slot = { isolate: PreparedIsolate.create(code, memoryMb, key), ready: false };
      const owner = list;
      slot.isolate.then(
        () => {
          slot.ready = true;
          this.onReady();
        },
        () => {
          // A prepare that failed (the process is short of memory, say) frees its place.
          const i = owner.indexOf(slot);
          if (i >= 0) {
            owner.splice(i, 1);
            this.count--;
          }
        },
      );
      list.push(slot);
      this.count++;
    }
  }

  /** Keys with at least one isolate ready now. */
  readyKeys(): string[] {
    const keys: string[] = [];
    for (const [key, list] of this.slots) if (list.some((s) => s.ready)) keys.push(key);
    return keys;
  }

  private touch(key: string, list: Slot[]): void {
    this.slots.delete(key);
    this.slots.set(key, list);
  }

  private evictOldest(keep: string): boolean {
    for (const [key, list] of this.slots) {
      if (key === keep) continue;
      const slot = list.shift();
      if (list.length === 0) this.slots.delete(key);
      if (!slot) continue;
      this.count--;
      void slot.isolate.then(
        (p) => p.dispose(),
        () => undefined,
      );
      return true;
    }
    return false;
  }
}
