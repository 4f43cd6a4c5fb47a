import { CancelledError, RateLimitedError, type SkillError } from "../errors.js";

/**
 * The host's concurrency limit, and its only owner: at most `maxConcurrent` calls execute at
 * once, at most `maxQueued` wait in line (first come, first served), and past that a call is
 * refused at once rather than queued without bound.
 */
export class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueued: number,
  ) {}

  /**
   * Takes a slot, waiting in line if need be. Resolves to the release function, E_RATE_LIMITED
   * when the line is full, or E_CANCELLED when `signal` aborts first (a waiting call leaves the line).
   */
  async acquire(signal?: AbortSignal): Promise<(() => void) | SkillError> {
    const cancelled = () => new CancelledError("cancelled while waiting for a slot", { details: { reason: "cancelled while waiting for a slot" } });
    if (signal?.aborted) return cancelled();
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxQueued) {
        return new RateLimitedError(
          `skillbox is busy: ${this.running} calls running and ${this.waiting.length} waiting (maxConcurrent ${this.maxConcurrent}, maxQueued ${this.maxQueued}); try again shortly`,
          { details: { retryAfterMs: 100, reason: "busy" } },
        );
      }
      // The releasing call hands its slot over directly, so no newcomer can slip in between.
      const granted = await new Promise<boolean>((resolve) => {
        const wake = () => {
          signal?.removeEventListener("abort", leave);
          resolve(true);
        };
        const leave = () => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve(false);
        };
        this.waiting.push(wake);
        signal?.addEventListener("abort", leave, { once: true });
      });
      if (!granted) return cancelled();
    } else this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }

  get stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
