import { randomBytes } from "node:crypto";
import { DEFAULT_LEASE_TTL_MS, type StoreOptions } from "./store.js";

/**
 * The concurrency leases one store handle holds, renewed on a timer while they are held. A host
 * that dies stops renewing, so its leases lapse `ttlMs` after the last renewal and other hosts
 * count them no more. The timer does not keep the process alive.
 */
export class LeaseKeeper {
  readonly ttlMs: number;
  readonly now: () => number;
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    options: StoreOptions,
    /** pushes the expiry of these leases to `expiresAt`; errors are reported, not thrown */
    private readonly renew: (ids: string[], expiresAt: number) => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {
    this.ttlMs = Math.max(50, options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS);
    this.now = options.wallClock ?? Date.now;
  }

  newId(): string {
    return `lse_${randomBytes(9).toString("hex")}`;
  }

  expiresAt(): number {
    return this.now() + this.ttlMs;
  }

  hold(id: string): void {
    this.held.add(id);
    if (!this.timer) {
      // Renew well before expiry, so a slow store or a busy event loop does not lose a live lease.
      this.timer = setInterval(() => void this.tick(), Math.max(10, Math.floor(this.ttlMs / 4)));
      this.timer.unref();
    }
  }

  drop(id: string): void {
    this.held.delete(id);
    if (this.held.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async tick(): Promise<void> {
    if (this.renewing || this.held.size === 0) return;
    this.renewing = true;
    try {
      await this.renew([...this.held], this.expiresAt());
    } catch (err) {
      this.onError(err as Error);
    } finally {
      this.renewing = false;
    }
  }

  close(): void {
    this.held.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
