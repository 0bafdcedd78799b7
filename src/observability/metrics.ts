/**
 * Prometheus metrics of one runtime (prom-client), in a registry of its own so that several
 * runtimes in one process (tests, the CLI) do not collide. Fed by the runtime from its worker's
 * events and its own starts; the queue depth is read from the store when scraped.
 * Layer: beside worker/ and maintenance/ (it sees the driver interface only).
 */
import { createRequire } from "node:module";
import type { Counter, Histogram, Registry } from "prom-client";
import type { StorageDriver } from "../store/driver.ts";

/** Seconds: from a few ms (a no-op task picked up at once) to an hour. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

type PromClient = typeof import("prom-client");

interface Instruments {
  readonly registry: Registry;
  readonly enqueued: Counter<"task">;
  readonly started: Counter<"task">;
  readonly succeeded: Counter<"task">;
  readonly failed: Counter<"task">;
  readonly dead: Counter<"task">;
  readonly pickup: Histogram<"task">;
  readonly runTime: Histogram<"task" | "outcome">;
}

/**
 * Made when first needed: a runtime that is never scraped and runs no worker (a task thread, the
 * CLI, a process that only starts tasks) does not load prom-client at all; its starts are counted
 * meanwhile and show in the first scrape. A runtime with a worker makes them as it starts
 * (`prepare`), so its first task does not wait for prom-client to load.
 */
export class TaskMetrics {
  private made: Instruments | null = null;
  /** Starts counted before prom-client was loaded, by task name. */
  private readonly enqueuedEarly = new Map<string, number>();

  constructor(private readonly driver: StorageDriver) {}

  get registry(): Registry {
    return this.instruments().registry;
  }

  /** Loads prom-client and makes the instruments now rather than on the first event. */
  prepare(): void {
    this.instruments();
  }

  private instruments(): Instruments {
    if (this.made) return this.made;
    this.made = this.make();
    for (const [task, count] of this.enqueuedEarly) this.made.enqueued.inc({ task }, count);
    this.enqueuedEarly.clear();
    return this.made;
  }

  private make(): Instruments {
    const { Counter, Gauge, Histogram, Registry } = createRequire(import.meta.url)("prom-client") as PromClient;
    const driver = this.driver;
    const registry = new Registry();
    const registers = [registry];
    new Gauge({
      name: "underway_queue_depth",
      help: "Tasks per queue and state: due (waiting for a worker), later (delayed, backing off or waiting for predecessors), running",
      labelNames: ["queue", "state"],
      registers,
      // Read when scraped: one grouped read over the partial indexes of pending and running tasks.
      async collect() {
        this.reset();
        for (const q of await driver.taskQueueDepth()) {
          this.set({ queue: q.queue, state: "due" }, Number(q.due));
          this.set({ queue: q.queue, state: "later" }, Number(q.later));
          this.set({ queue: q.queue, state: "running" }, Number(q.running));
        }
      },
    });
    return {
      registry,
      enqueued: new Counter({ name: "underway_tasks_enqueued_total", help: "Tasks stored by Task.startNew in this process", labelNames: ["task"], registers }),
      started: new Counter({ name: "underway_tasks_started_total", help: "Attempts started by this process's worker", labelNames: ["task"], registers }),
      succeeded: new Counter({ name: "underway_tasks_succeeded_total", help: "Tasks that succeeded in this process's worker", labelNames: ["task"], registers }),
      failed: new Counter({ name: "underway_tasks_failed_total", help: "Attempts that failed and will be retried", labelNames: ["task"], registers }),
      dead: new Counter({ name: "underway_tasks_dead_total", help: "Tasks that failed for good (no attempts left, or unrecoverable)", labelNames: ["task"], registers }),
      pickup: new Histogram({
        name: "underway_task_pickup_latency_seconds",
        help: "From when an attempt was due to when a worker claimed it (database clock)",
        labelNames: ["task"],
        buckets: BUCKETS,
        registers,
      }),
      runTime: new Histogram({
        name: "underway_task_run_seconds",
        help: "How long attempts ran, by outcome",
        labelNames: ["task", "outcome"],
        buckets: BUCKETS,
        registers,
      }),
    };
  }

  taskEnqueued(task: string, count = 1): void {
    if (this.made) this.made.enqueued.inc({ task }, count);
    else this.enqueuedEarly.set(task, (this.enqueuedEarly.get(task) ?? 0) + count);
  }

  attemptStarted(task: string, pickupLatencyMs: number | null): void {
    const m = this.instruments();
    m.started.inc({ task });
    if (pickupLatencyMs !== null) m.pickup.observe({ task }, Math.max(0, pickupLatencyMs) / 1000);
  }

  attemptEnded(task: string, outcome: "succeeded" | "failed" | "dead" | "released", durationMs: number | null): void {
    const m = this.instruments();
    if (outcome === "succeeded") m.succeeded.inc({ task });
    else if (outcome === "failed") m.failed.inc({ task });
    else if (outcome === "dead") m.dead.inc({ task });
    if (durationMs !== null) m.runTime.observe({ task, outcome }, durationMs / 1000);
  }

  /** The exposition text, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    const { registry } = this.instruments();
    return { contentType: registry.contentType, body: await registry.metrics() };
  }
}
