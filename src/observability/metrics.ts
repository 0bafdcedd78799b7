/**
 * Prometheus metrics of one runtime (prom-client), in a registry of its own so that several
 * runtimes in one process (tests, the CLI) do not collide. Fed by the runtime from its worker's
 * events and its own starts; the queue depth is read from the store when scraped.
 * Layer: beside worker/ and maintenance/ (it sees the driver interface only).
 *
 * Every attempt counts its start and end, thousands of times a second. prom-client validates and
 * hashes the labels of each `inc` and `observe` (about 1.9 µs for an attempt's two counts and two
 * observations here, a tenth of a no-op task's whole cost in a drain). So the runtime counts in
 * plain numbers per task name (a Tally), and the registry reads them when it is scraped: the
 * counters through their `collect` hook, the histograms from the tallies directly.
 */
import { createRequire } from "node:module";
import type { Counter, Histogram, Registry } from "prom-client";
import type { StorageDriver } from "../store/driver.ts";
import { STORE_CHECK_LIMIT_MS, withinMs } from "./time-limit.ts";

/** Seconds: from a few ms (a no-op task picked up at once) to an hour. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600] as const;

type PromClient = typeof import("prom-client");

const OUTCOMES = ["succeeded", "failed", "dead", "released", "discarded"] as const;
type Outcome = (typeof OUTCOMES)[number];

/** The observations of one histogram series: a count per bucket (not cumulative), their sum and count. */
class Series {
  readonly perBucket = new Float64Array(BUCKETS.length);
  sum = 0;
  count = 0;

  constructor(readonly labels: Readonly<Record<string, string>>) {}

  observe(seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    if (i < BUCKETS.length) this.perBucket[i]!++;
    this.sum += seconds;
    this.count++;
  }

  clear(): void {
    this.perBucket.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** What one task name counted. The counters' fields hold what the registry has not read yet. */
class Tally {
  enqueued = 0;
  started = 0;
  succeeded = 0;
  failed = 0;
  dead = 0;
  readonly pickup: Series;
  /** The run-time series by outcome, made at the first attempt that ends so. */
  readonly runTime: (Series | undefined)[] = [undefined, undefined, undefined, undefined];
  /** A task class registered with the runtime: its counters show 0 before they first count. */
  registered = false;

  constructor(readonly task: string) {
    this.pickup = new Series({ task });
  }

  runTimeOf(outcome: Outcome): Series {
    const i = OUTCOMES.indexOf(outcome);
    return (this.runTime[i] ??= new Series({ task: this.task, outcome }));
  }
}

/** Queues whose depth reads 0 once they are empty (see the queue depth gauge). */
const MAX_REMEMBERED_QUEUES = 1_000;

type CounterField = "enqueued" | "started" | "succeeded" | "failed" | "dead";

/**
 * The task names the runtime knows from its code: its TaskRegistry, which names the classes it
 * was given or started. Never the names of stored rows, which anyone who can store a task picks.
 */
export interface RegisteredTaskNames {
  names(): Iterable<string>;
}

/**
 * The instruments are made at the first scrape (or the first read of `registry`): a runtime that
 * is never scraped does not load prom-client at all, and no attempt ever waits for it. What was
 * counted before shows in that first scrape.
 */
export class TaskMetrics {
  /** The registry, with the instruments registered in it. */
  private made: Registry | null = null;
  private readonly tallies = new Map<string, Tally>();

  /**
   * `registered`: the task classes whose counters read 0 from the first scrape after they are
   * registered, rather than appearing at their first count (which `rate()` and `increase()`
   * cannot see: a series' first sample has nothing before it). Other names, such as a stored
   * row's that no class has, still show a counter only once it counts.
   */
  constructor(
    private readonly driver: StorageDriver,
    private readonly registered: RegisteredTaskNames | null = null,
  ) {}

  get registry(): Registry {
    return this.instruments();
  }

  private tally(task: string): Tally {
    let t = this.tallies.get(task);
    if (t === undefined) {
      t = new Tally(task);
      this.tallies.set(task, t);
    }
    return t;
  }

  private instruments(): Registry {
    return (this.made ??= this.make());
  }

  /** Loads prom-client and registers the gauge, the counters and the histograms in a new registry. */
  private make(): Registry {
    const { Counter, Gauge, Histogram, Registry } = createRequire(import.meta.url)("prom-client") as PromClient;
    const driver = this.driver;
    const tallies = this.tallies;
    const registered = this.registered;
    /** Marks the registered names' tallies (making them for names not counted yet); asked at each scrape, as classes register late too. */
    const markRegistered = () => {
      if (registered === null) return;
      for (const task of registered.names()) this.tally(task).registered = true;
    };
    const registry = new Registry();
    const registers = [registry];
    // Queues that had tasks: they read 0 once empty, rather than vanishing from the scrape (a
    // gap, and a stale series, where a dashboard expects 0). At most MAX_REMEMBERED_QUEUES.
    const seenQueues = new Set<string>();
    // One read of the store per scrape, shared by the two gauges that show it: a scrape calls
    // every metric's collect in one synchronous pass, and the read is forgotten after it. A store
    // that cannot be read leaves the depth out, not the scrape: the process's own counts are
    // worth having most when the store is in trouble.
    // A store that does not answer within STORE_CHECK_LIMIT_MS counts as down; its read is not
    // asked again while it is still out (scrapes would pile reads up on a hung connection), each
    // scrape waiting for it at most the limit again.
    let reading: Promise<Awaited<ReturnType<StorageDriver["taskQueueDepth"]>> | null> | null = null;
    let outstanding: Promise<Awaited<ReturnType<StorageDriver["taskQueueDepth"]>>> | null = null;
    const readDepth = () => {
      if (reading === null) {
        if (outstanding === null) {
          const read = driver.taskQueueDepth();
          outstanding = read;
          const settled = () => {
            if (outstanding === read) outstanding = null;
          };
          read.then(settled, settled);
        }
        reading = withinMs(outstanding, STORE_CHECK_LIMIT_MS, "the store").catch(() => null);
        queueMicrotask(() => (reading = null));
      }
      return reading;
    };
    new Gauge({
      name: "underway_store_up",
      help: "1 when this scrape could read the queue depth from the store, 0 when it could not",
      registers,
      async collect() {
        this.set((await readDepth()) === null ? 0 : 1);
      },
    });
    new Gauge({
      name: "underway_queue_depth",
      help: "Tasks per queue and state: due (waiting for a worker), later (delayed, backing off or waiting for predecessors), running",
      labelNames: ["queue", "state"],
      registers,
      // Read when scraped: one grouped read over the partial indexes of pending and running tasks.
      async collect() {
        const depths = await readDepth();
        this.reset();
        if (depths === null) return;
        for (const queue of seenQueues) for (const state of ["due", "later", "running"]) this.set({ queue, state }, 0);
        for (const q of depths) {
          if (seenQueues.size < MAX_REMEMBERED_QUEUES) seenQueues.add(q.queue);
          this.set({ queue: q.queue, state: "due" }, Number(q.due));
          this.set({ queue: q.queue, state: "later" }, Number(q.later));
          this.set({ queue: q.queue, state: "running" }, Number(q.running));
        }
      },
    });
    /**
     * A counter by task that takes, when read, what the tallies counted since the last read; a
     * registered task's series is there from the first read, at 0.
     */
    const counter = (field: CounterField, name: string, help: string): Counter<"task"> =>
      new Counter({
        name,
        help,
        labelNames: ["task"],
        registers,
        collect() {
          markRegistered();
          for (const t of tallies.values()) {
            const n = t[field];
            if (n === 0 && !t.registered) continue;
            t[field] = 0;
            this.inc({ task: t.task }, n);
          }
        },
      });

    /**
     * A histogram whose series are the tallies' (read, never observed into): prom-client's own
     * Histogram for its registration and type, with the two reads the registry uses.
     */
    class TalliedHistogram extends Histogram<string> {
      constructor(
        private readonly metricName: string,
        private readonly description: string,
        labelNames: readonly string[],
        private readonly seriesOf: (t: Tally) => Iterable<Series | undefined>,
      ) {
        super({ name: metricName, help: description, labelNames, buckets: [...BUCKETS], registers });
      }

      override async get(): Promise<Awaited<ReturnType<Histogram<string>["get"]>>> {
        const name = this.metricName;
        const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
        for (const t of tallies.values()) {
          for (const s of this.seriesOf(t)) {
            if (s === undefined || s.count === 0) continue;
            let cumulative = 0;
            for (let i = 0; i < BUCKETS.length; i++) {
              cumulative += s.perBucket[i]!;
              values.push({ value: cumulative, labels: { le: BUCKETS[i]!, ...s.labels }, metricName: `${name}_bucket` });
            }
            values.push({ value: s.count, labels: { le: "+Inf", ...s.labels }, metricName: `${name}_bucket` });
            values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${name}_sum` });
            values.push({ value: s.count, labels: { ...s.labels }, metricName: `${name}_count` });
          }
        }
        // At run time a metric's type is its name ("histogram"), as prom-client's own get() returns it.
        return { name, help: this.description, type: "histogram", aggregator: "sum", values } as unknown as Awaited<ReturnType<Histogram<string>["get"]>>;
      }

      /** The registry's exposition prefers this read, when a metric has it, to get(). */
      getForPromString(): ReturnType<TalliedHistogram["get"]> {
        return this.get();
      }

      override reset(): void {
        // prom-client's constructor resets the metric before this class has its fields.
        if (this.seriesOf === undefined) return;
        for (const t of tallies.values()) for (const s of this.seriesOf(t)) s?.clear();
      }
    }

    counter("enqueued", "underway_tasks_enqueued_total", "Task starts made in this process, counted when the call returns (deduplicated and rolled-back starts included)");
    counter("started", "underway_tasks_started_total", "Attempts started by this process's worker");
    counter("succeeded", "underway_tasks_succeeded_total", "Tasks that succeeded in this process's worker");
    counter("failed", "underway_tasks_failed_total", "Attempts that failed and will be retried");
    counter("dead", "underway_tasks_dead_total", "Tasks that failed for good (no attempts left, or unrecoverable)");
    new TalliedHistogram(
      "underway_task_pickup_latency_seconds",
      "From when an attempt was due to when a worker claimed it (database clock)",
      ["task"],
      (t) => [t.pickup],
    );
    new TalliedHistogram("underway_task_run_seconds", "How long attempts ran, by outcome", ["task", "outcome"], (t) => t.runTime);
    return registry;
  }

  taskEnqueued(task: string, count = 1): void {
    this.tally(task).enqueued += count;
  }

  attemptStarted(task: string, pickupLatencyMs: number | null): void {
    const t = this.tally(task);
    t.started++;
    if (pickupLatencyMs !== null) t.pickup.observe(Math.max(0, pickupLatencyMs) / 1000);
  }

  attemptEnded(task: string, outcome: Outcome, durationMs: number | null): void {
    const t = this.tally(task);
    if (outcome === "succeeded") t.succeeded++;
    else if (outcome === "failed") t.failed++;
    else if (outcome === "dead") t.dead++;
    if (durationMs !== null) t.runTimeOf(outcome).observe(durationMs / 1000);
  }

  /** The exposition text, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    const registry = this.instruments();
    return { contentType: registry.contentType, body: await registry.metrics() };
  }
}
