import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { percentile } from "./review.js";

const RESERVOIR = 1024;

export interface MetricsSnapshot {
  calls: { skill: string; outcome: string; count: number; p50Ms: number; p95Ms: number; p99Ms: number }[];
  denials: { rule: string; count: number }[];
  auditWriteFailures: number;
  workerKills: number;
}

/**
 * Call counts, latency percentiles per skill and outcome, denials per rule, log write
 * failures: as a snapshot (`host.metrics()`) and as Prometheus text (`host.prometheus()`).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly calls = new Counter({ name: "skillbox_calls_total", help: "Calls by skill and outcome (ok or error code).", labelNames: ["skill", "outcome"], registers: [this.registry] });
  private readonly duration = new Histogram({
    name: "skillbox_call_duration_seconds",
    help: "Call duration by skill and outcome, retries and fallback included.",
    labelNames: ["skill", "outcome"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly denied = new Counter({ name: "skillbox_denials_total", help: "Refusals by the rule that made them.", labelNames: ["rule"], registers: [this.registry] });
  private readonly samples = new Map<string, number[]>();
  private readonly counts = new Map<string, number>();
  private readonly denialCounts = new Map<string, number>();

  constructor(auditFailures: () => number, workerKills: () => number) {
    new Gauge({
      name: "skillbox_audit_write_failures",
      help: "Security log events that could not be written.",
      registers: [this.registry],
      collect() {
        this.set(auditFailures());
      },
    });
    new Gauge({
      name: "skillbox_sandbox_worker_kills",
      help: "Sandbox worker processes killed for not stopping.",
      registers: [this.registry],
      collect() {
        this.set(workerKills());
      },
    });
    this.auditFailures = auditFailures;
    this.workerKills = workerKills;
  }
  private readonly auditFailures: () => number;
  private readonly workerKills: () => number;

  call(skill: string, outcome: string, durationMs: number): void {
    this.calls.inc({ skill, outcome });
    this.duration.observe({ skill, outcome }, durationMs / 1000);
    const k = `${skill}\0${outcome}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    let s = this.samples.get(k);
    if (!s) this.samples.set(k, (s = []));
    if (s.length >= RESERVOIR) s.shift();
    s.push(durationMs);
  }

  denial(rule: string): void {
    this.denied.inc({ rule });
    this.denialCounts.set(rule, (this.denialCounts.get(rule) ?? 0) + 1);
  }

  snapshot(): MetricsSnapshot {
    const calls = [...this.samples].map(([k, s]) => {
      const [skill, outcome] = k.split("\0") as [string, string];
      const sorted = [...s].sort((a, b) => a - b);
      return { skill, outcome, count: this.counts.get(k) ?? 0, p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95), p99Ms: percentile(sorted, 99) };
    });
    return {
      calls: calls.sort((a, b) => a.skill.localeCompare(b.skill) || a.outcome.localeCompare(b.outcome)),
      denials: [...this.denialCounts].map(([rule, count]) => ({ rule, count })).sort((a, b) => b.count - a.count),
      auditWriteFailures: this.auditFailures(),
      workerKills: this.workerKills(),
    };
  }

  /** Prometheus text exposition format, for a host application's /metrics endpoint. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
