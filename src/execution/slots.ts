import { RateLimitedError, type SkillError } from "../errors.js";

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

  /** Takes a slot, waiting in line if need be. Resolves to the release function, or E_RATE_LIMITED when the line is full. */
  async acquire(): Promise<(() => void) | SkillError> {
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxQueued) {
        return new RateLimitedError(
          `skillbox is busy: ${this.running} calls running and ${this.waiting.length} waiting (maxConcurrent ${this.maxConcurrent}, maxQueued ${this.maxQueued}); try again shortly`,
          { details: { retryAfterMs: 100, reason: "busy" } },
        );
      }
      // The releasing call hands its slot over directly, so no newcomer can slip in between.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
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
