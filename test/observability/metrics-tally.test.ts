/**
 * The runtime's metrics count each attempt in plain numbers and give them to prom-client when
 * scraped: the exposition must be what prom-client's own counters and histograms would print for
 * the same events, scrape after scrape.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { TaskMetrics } from "../../src/observability/metrics.ts";
import type { StorageDriver } from "../../src/store/driver.ts";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** A store whose queue is empty: the depth gauge reads it at each scrape. */
const emptyStore = { taskQueueDepth: async () => [] } as unknown as StorageDriver;

/** The same events, recorded by prom-client's own instruments. */
function reference() {
  const registry = new Registry();
  const registers = [registry];
  const counter = (name: string) => new Counter({ name, help: "h", labelNames: ["task"], registers });
  return {
    registry,
    enqueued: counter("underway_tasks_enqueued_total"),
    started: counter("underway_tasks_started_total"),
    succeeded: counter("underway_tasks_succeeded_total"),
    failed: counter("underway_tasks_failed_total"),
    dead: counter("underway_tasks_dead_total"),
    pickup: new Histogram({ name: "underway_task_pickup_latency_seconds", help: "h", labelNames: ["task"], buckets: BUCKETS, registers }),
    runTime: new Histogram({ name: "underway_task_run_seconds", help: "h", labelNames: ["task", "outcome"], buckets: BUCKETS, registers }),
  };
}

/** The sample lines of an exposition (no comments, no queue depth or store reachability), sorted. */
function samples(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("underway_queue_depth") && !l.startsWith("underway_store_up"))
    .sort();
}

describe("task metrics, counted per task and read when scraped", () => {
  it("prints what prom-client's own instruments print for the same events, scrape after scrape", async () => {
    const metrics = new TaskMetrics(emptyStore);
    const ref = reference();
    // Names a scrape must escape, and latencies on, between and beyond the bucket bounds.
    const names = ["Ok", 'Quote"d\\back\nline', "Ünïcode"];
    const events = (round: number): void => {
      names.forEach((task, k) => {
        metrics.taskEnqueued(task, 3 + k);
        ref.enqueued.inc({ task }, 3 + k);
        const latencies = [0, 3, 5, 7.5, 250, 2_000, 3_600_000, 5_000_000 + round];
        for (const ms of latencies) {
          metrics.attemptStarted(task, ms);
          ref.started.inc({ task });
          ref.pickup.observe({ task }, ms / 1000);
        }
        metrics.attemptStarted(task, null);
        ref.started.inc({ task });
        metrics.attemptStarted(task, -4);
        ref.started.inc({ task });
        ref.pickup.observe({ task }, 0);
        const ends: ["succeeded" | "failed" | "dead" | "released", number | null][] = [
          ["succeeded", 0.04],
          ["succeeded", 12],
          ["failed", 60_000],
          ["dead", 1],
          ["released", 10],
          ["succeeded", null],
        ];
        for (const [outcome, ms] of ends) {
          metrics.attemptEnded(task, outcome, ms);
          if (outcome !== "released") ref[outcome].inc({ task });
          if (ms !== null) ref.runTime.observe({ task, outcome }, ms / 1000);
        }
      });
    };
    events(1);
    // Counted before the first scrape, prom-client not loaded yet: all of it shows.
    const first = samples((await metrics.render()).body);
    assert.deepEqual(first, samples(await ref.registry.metrics()));
    assert.ok(first.includes('underway_tasks_started_total{task="Quote\\"d\\\\back\\nline"} 10'), first.join("\n"));
    assert.ok(first.includes('underway_task_pickup_latency_seconds_bucket{le="0.005",task="Ok"} 4'));
    assert.ok(first.includes('underway_task_pickup_latency_seconds_bucket{le="+Inf",task="Ok"} 9'));
    assert.ok(first.includes('underway_task_run_seconds_count{task="Ok",outcome="released"} 1'));
    // A scrape reads, it does not count again; later events add to the totals.
    assert.deepEqual(samples((await metrics.render()).body), first);
    events(2);
    const second = samples((await metrics.render()).body);
    assert.deepEqual(second, samples(await ref.registry.metrics()));
    assert.ok(second.includes('underway_tasks_enqueued_total{task="Ok"} 6'));
    // The registry is prom-client's: its JSON read and its reset work on these series too.
    const json = await metrics.registry.getMetricsAsJSON();
    const pickup = json.find((m) => m.name === "underway_task_pickup_latency_seconds");
    assert.equal(pickup?.type, "histogram");
    const values = (pickup?.values ?? []) as { metricName?: string; labels: Record<string, unknown>; value: number }[];
    assert.ok(values.some((v) => v.metricName === "underway_task_pickup_latency_seconds_count" && v.labels.task === "Ok" && v.value === 18));
    metrics.registry.resetMetrics();
    ref.registry.resetMetrics();
    events(3);
    assert.deepEqual(samples((await metrics.render()).body), samples(await ref.registry.metrics()));
  });

  it("prints no series for a task that has not run, and ignores a duration that is not a number", async () => {
    const metrics = new TaskMetrics(emptyStore);
    metrics.taskEnqueued("Waiting");
    metrics.attemptEnded("Odd", "succeeded", Number.NaN);
    const lines = samples((await metrics.render()).body);
    assert.deepEqual(lines, ['underway_tasks_enqueued_total{task="Waiting"} 1', 'underway_tasks_succeeded_total{task="Odd"} 1']);
  });
});

describe("task metrics of registered task classes", () => {
  const COUNTERS = ["enqueued", "started", "succeeded", "failed", "dead"].map((c) => `underway_tasks_${c}_total`);
  /** The five counters' lines of one task, at `value` (the same for each). */
  const counterLines = (task: string, value: number): string[] => COUNTERS.map((c) => `${c}{task="${task}"} ${value}`);

  it("shows every counter of a registered task at 0 from the first scrape, before it counts, so rate() sees its first events", async () => {
    const names = ["Ok", 'Quote"d'];
    const metrics = new TaskMetrics(emptyStore, { names: () => names });
    const first = samples((await metrics.render()).body);
    assert.deepEqual(first, [...counterLines("Ok", 0), ...counterLines('Quote\\"d', 0)].sort());
    // What is counted later adds to those series, as prom-client's own counters made at 0 would.
    const ref = reference();
    for (const task of names) for (const c of ["enqueued", "started", "succeeded", "failed", "dead"] as const) ref[c].inc({ task }, 0);
    metrics.taskEnqueued("Ok", 2);
    ref.enqueued.inc({ task: "Ok" }, 2);
    metrics.attemptStarted("Ok", 20);
    ref.started.inc({ task: "Ok" });
    ref.pickup.observe({ task: "Ok" }, 0.02);
    metrics.attemptEnded("Ok", "succeeded", 40);
    ref.succeeded.inc({ task: "Ok" });
    ref.runTime.observe({ task: "Ok", outcome: "succeeded" }, 0.04);
    const second = samples((await metrics.render()).body);
    assert.deepEqual(second, samples(await ref.registry.metrics()));
    assert.ok(second.includes('underway_tasks_failed_total{task="Ok"} 0'));
    assert.ok(second.includes('underway_tasks_succeeded_total{task="Ok"} 1'));
    // A reset of the registry (prom-client's) leaves them at 0, still there.
    metrics.registry.resetMetrics();
    assert.deepEqual(samples((await metrics.render()).body), first);
  });

  it("shows a class registered after the first scrape from the next one", async () => {
    const names: string[] = [];
    const metrics = new TaskMetrics(emptyStore, { names: () => names });
    assert.deepEqual(samples((await metrics.render()).body), []);
    names.push("Late");
    assert.deepEqual(samples((await metrics.render()).body), counterLines("Late", 0).sort());
  });

  it("makes no series for a name no class has (a stored row's) beyond those it counted, as before", async () => {
    const metrics = new TaskMetrics(emptyStore, { names: () => ["Ok"] });
    // A row of an unknown task is claimed and ends dead: started and dead count, nothing else shows.
    metrics.attemptStarted("Stray", 5);
    metrics.attemptEnded("Stray", "dead", null);
    const lines = samples((await metrics.render()).body);
    const stray = lines.filter((l) => l.includes('task="Stray"'));
    assert.deepEqual(stray, [
      'underway_task_pickup_latency_seconds_bucket{le="+Inf",task="Stray"} 1',
      ...BUCKETS.map((b) => `underway_task_pickup_latency_seconds_bucket{le="${b}",task="Stray"} 1`),
      'underway_task_pickup_latency_seconds_count{task="Stray"} 1',
      'underway_task_pickup_latency_seconds_sum{task="Stray"} 0.005',
      'underway_tasks_dead_total{task="Stray"} 1',
      'underway_tasks_started_total{task="Stray"} 1',
    ].sort());
    assert.deepEqual(lines.filter((l) => !l.includes('task="Stray"')), counterLines("Ok", 0).sort());
  });
});
