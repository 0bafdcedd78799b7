import { Task, type Runtime } from "../lib/underway.ts";
import { monotonicNow, sharedNow, sleep } from "../lib/clock.ts";
import type { ChildSpec, Measurement, RoundResult } from "../lib/protocol.ts";
import { expectCounts, openRuntime } from "../lib/runtime.ts";
import { runChild } from "../lib/spawn.ts";
import { percentile } from "../lib/stats.ts";
import { BenchLatency, pickupLatencies } from "../lib/tasks.ts";

/** A fallback poll this long never fires during a run: only the wake-up mechanism counts. */
const POLL_INTERVAL_MS = 60_000;
/** How long the worker sits idle before the first start. */
const IDLE_BEFORE_MS = 500;

/** Scenario 4: the worker and the enqueuing code share one process (and its event loop). */
export async function latencyLocal(spec: ChildSpec): Promise<RoundResult> {
  const worker = await startIdleWorker(spec);
  try {
    await sleep(IDLE_BEFORE_MS);
    const enqueue = await worker.runtime.run(() => enqueueAtRate(spec));
    await worker.allSucceeded;
    return await report(spec, worker.runtime, enqueue);
  } finally {
    await worker.runtime.stop({ graceMs: 1_000 });
  }
}

/**
 * Scenario 5: the tasks are started by another process; the worker learns of them by its watch on
 * the WAL file (SQLite) or by LISTEN/NOTIFY (PostgreSQL).
 */
export async function latencyCross(spec: ChildSpec): Promise<RoundResult> {
  const worker = await startIdleWorker(spec);
  try {
    await sleep(IDLE_BEFORE_MS);
    const enqueuer = await runChild(
      {
        scenario: "enqueuer",
        store: spec.store,
        db: spec.db,
        count: spec.count,
        ...(spec.rate ? { rate: spec.rate } : {}),
        timeLimitMs: spec.timeLimitMs,
        ...(spec.statementsFile ? { statementsFile: spec.statementsFile.replace(/\.json$/, ".enqueuer.json") } : {}),
      },
      { killAfterMs: spec.timeLimitMs, ...(spec.execArgv ? { execArgv: spec.execArgv } : {}) },
    );
    await worker.allSucceeded;
    return await report(spec, worker.runtime, {
      startsPerSecond: Number(enqueuer.details.startsPerSecond),
      slowestStartMs: Number(enqueuer.details.slowestStartMs),
    });
  } finally {
    await worker.runtime.stop({ graceMs: 1_000 });
  }
}

/** The enqueuing process of scenario 5: a runtime without a worker on the same store. */
export async function enqueuer(spec: ChildSpec): Promise<RoundResult> {
  const runtime = await openRuntime(spec.db, false);
  try {
    const enqueue = await runtime.run(() => enqueueAtRate(spec));
    return { measurements: [], checks: [], details: { ...enqueue } };
  } finally {
    await runtime.stop();
  }
}

interface EnqueueStats {
  startsPerSecond: number;
  /** The longest awaited Task.startNew call, ms. */
  slowestStartMs: number;
}

/** Starts spec.count BenchLatency tasks on a fixed schedule of spec.rate per second. */
async function enqueueAtRate(spec: ChildSpec): Promise<EnqueueStats> {
  const intervalMs = 1_000 / (spec.rate ?? 100);
  const first = monotonicNow();
  let slowestStartMs = 0;
  for (let i = 0; i < spec.count; i++) {
    await sleep(first + i * intervalMs - monotonicNow());
    const before = monotonicNow();
    await Task.startNew(BenchLatency, { enqueuedAt: sharedNow() });
    slowestStartMs = Math.max(slowestStartMs, monotonicNow() - before);
  }
  const spanMs = monotonicNow() - first;
  return { startsPerSecond: ((spec.count - 1) * 1_000) / spanMs, slowestStartMs };
}

async function startIdleWorker(spec: ChildSpec): Promise<{ runtime: Runtime; allSucceeded: Promise<void> }> {
  let succeeded = 0;
  let settle: (error?: Error) => void = () => undefined;
  const allSucceeded = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  const timer = setTimeout(
    () => settle(new Error(`${spec.scenario}: only ${succeeded} of ${spec.count} tasks succeeded within the time limit`)),
    Math.max(1_000, spec.timeLimitMs - 2_000),
  );
  allSucceeded.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  );
  const runtime = await openRuntime(spec.db, { concurrency: 10, pollIntervalMs: POLL_INTERVAL_MS }, (r) => {
    r.on("taskSucceeded", () => {
      if (++succeeded === spec.count) settle();
    });
    for (const event of ["taskFailed", "taskDead", "taskReleased"] as const) {
      r.on(event, (e) => settle(new Error(`${spec.scenario}: task ${e.taskId}: unexpected ${event}`)));
    }
  });
  return { runtime, allSucceeded };
}

async function report(spec: ChildSpec, runtime: Runtime, enqueue: EnqueueStats): Promise<RoundResult> {
  const check = await expectCounts(runtime, { succeeded: spec.count }, spec.scenario);
  if (pickupLatencies.length !== spec.count) {
    throw new Error(`${spec.scenario}: ${pickupLatencies.length} handler runs for ${spec.count} tasks`);
  }
  const sorted = [...pickupLatencies].sort((a, b) => a - b);
  const measurements: Measurement[] = [
    { key: "p50", label: "p50", unit: "ms", value: percentile(sorted, 50) },
    { key: "p95", label: "p95", unit: "ms", value: percentile(sorted, 95) },
    { key: "p99", label: "p99", unit: "ms", value: percentile(sorted, 99) },
    { key: "max", label: "max", unit: "ms", value: sorted[sorted.length - 1] as number },
  ];
  return {
    measurements,
    checks: [`${check}; ${pickupLatencies.length} latency samples${paceNote(spec, enqueue)}`],
    details: {
      tasks: spec.count,
      startsPerSecond: enqueue.startsPerSecond,
      slowestStartMs: enqueue.slowestStartMs,
      minLatencyMs: sorted[0] as number,
    },
  };
}

/** Empty when the starts kept to the schedule (within 5%), else a warning for the report. */
function paceNote(spec: ChildSpec, enqueue: EnqueueStats): string {
  const target = spec.rate ?? 100;
  if (Math.abs(enqueue.startsPerSecond - target) <= 0.05 * target) return "";
  return `; WARNING: starts ran at ${enqueue.startsPerSecond.toFixed(1)}/s, not ${target}/s`;
}
