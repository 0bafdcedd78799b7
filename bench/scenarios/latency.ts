import { monotonicNow, sharedNow, sleep } from "../lib/clock.ts";
import type { ChildSpec, Measurement, RoundResult } from "../lib/protocol.ts";
import { runChild } from "../lib/spawn.ts";
import { percentile } from "../lib/stats.ts";
import type { RunRecord } from "../lib/tasks.ts";
import { openSystem } from "../systems/index.ts";
import type { Producer, RunningWorker } from "../systems/types.ts";

/**
 * underway's fallback poll during the latency scenarios: this long never fires during a round, so
 * only its wake-up mechanism counts (its default, 1 s, could only shorten the tail).
 */
export const UNDERWAY_LATENCY_POLL_MS = 60_000;
/** How long the worker sits idle before the first enqueue. */
export const IDLE_BEFORE_MS = 500;
/** Worker concurrency in the latency scenarios (underway's default; set on every system). */
export const LATENCY_CONCURRENCY = 10;

/**
 * Scenario 4: a worker waits, idle; another process enqueues `count` tasks at `rate` per second,
 * each carrying the shared-clock time taken just before its enqueue call. Latency = the handler's
 * start (shared clock, in the worker process) minus that time.
 */
export async function latency(spec: ChildSpec): Promise<RoundResult> {
  const system = await openSystem(spec);
  try {
    await system.setup();
    const runs: RunRecord[] = [];
    const worker = await system.startWorker({
      concurrency: LATENCY_CONCURRENCY,
      onRun: (run) => runs.push(run),
      pollIntervalMs: UNDERWAY_LATENCY_POLL_MS,
    });
    let enqueue: EnqueueStats;
    try {
      await sleep(IDLE_BEFORE_MS);
      const enqueuer = await runChild(
        {
          scenario: "enqueuer",
          system: spec.system,
          target: spec.target,
          count: spec.count,
          ...(spec.rate ? { rate: spec.rate } : {}),
          timeLimitMs: spec.timeLimitMs,
          ...(spec.statementsFile ? { statementsFile: spec.statementsFile.replace(/\.json$/, ".enqueuer.json") } : {}),
        },
        { killAfterMs: spec.timeLimitMs, ...(spec.execArgv ? { execArgv: spec.execArgv } : {}) },
      );
      enqueue = { startsPerSecond: Number(enqueuer.details.startsPerSecond), slowestStartMs: Number(enqueuer.details.slowestStartMs) };
      await waitForAll(worker, spec, runs);
    } finally {
      await worker.stop();
    }
    return report(spec, runs, enqueue);
  } finally {
    await system.close();
  }
}

export async function waitForAll(worker: RunningWorker, spec: ChildSpec, runs: readonly RunRecord[]): Promise<void> {
  const deadline = monotonicNow() + Math.max(1_000, spec.timeLimitMs - 15_000);
  if ((await worker.completed(spec.count, () => runs.length, deadline)) === null) {
    throw new Error(`${spec.scenario}: only ${runs.length} of ${spec.count} tasks ran within the time limit`);
  }
}

/**
 * The enqueuing process of scenarios 4 and 5 (memory): the system's producer on the same store.
 * With `rate`, one awaited enqueue at a time on a fixed schedule; without, in bulk, `batch` per call.
 */
export async function enqueuer(spec: ChildSpec): Promise<RoundResult> {
  const system = await openSystem(spec);
  let producer: Producer | null = null;
  try {
    producer = await system.producer();
    const p = producer;
    if (spec.rate) {
      const stats = await enqueueAtRate(spec, (payload) => p.add(payload));
      return { measurements: [], checks: [], details: { ...stats } };
    }
    const batch = spec.batch ?? 1_000;
    const started = monotonicNow();
    for (let i = 0; i < spec.count; i += batch) {
      await p.addMany(Array.from({ length: Math.min(batch, spec.count - i) }, (_, k) => ({ n: i + k })));
    }
    return { measurements: [], checks: [], details: { loadMs: monotonicNow() - started } };
  } finally {
    await producer?.close();
    await system.close();
  }
}

export interface EnqueueStats {
  startsPerSecond: number;
  /** The longest awaited enqueue call, ms. */
  slowestStartMs: number;
}

/** Enqueues spec.count tasks on a fixed schedule of spec.rate per second. */
export async function enqueueAtRate(spec: ChildSpec, add: (payload: { n: number; enqueuedAt: number }) => Promise<unknown>): Promise<EnqueueStats> {
  const intervalMs = 1_000 / (spec.rate ?? 100);
  const first = monotonicNow();
  let slowestStartMs = 0;
  for (let i = 0; i < spec.count; i++) {
    await sleep(first + i * intervalMs - monotonicNow());
    const before = monotonicNow();
    await add({ n: i, enqueuedAt: sharedNow() });
    slowestStartMs = Math.max(slowestStartMs, monotonicNow() - before);
  }
  const spanMs = monotonicNow() - first;
  return { startsPerSecond: spec.count > 1 ? ((spec.count - 1) * 1_000) / spanMs : 0, slowestStartMs };
}

export function report(spec: ChildSpec, runs: readonly RunRecord[], enqueue: EnqueueStats): RoundResult {
  const latencies = runs.filter((r) => r.enqueuedAt !== undefined).map((r) => r.startedAt - (r.enqueuedAt as number));
  if (latencies.length === 0) throw new Error(`${spec.scenario}: no latency samples`);
  const sorted = latencies.sort((a, b) => a - b);
  const distinct = new Set(runs.map((r) => r.id)).size;
  const measurements: Measurement[] = [
    { key: "p50", label: "p50", unit: "ms", value: percentile(sorted, 50) },
    { key: "p95", label: "p95", unit: "ms", value: percentile(sorted, 95) },
    { key: "p99", label: "p99", unit: "ms", value: percentile(sorted, 99) },
    { key: "max", label: "max", unit: "ms", value: sorted[sorted.length - 1] as number },
  ];
  const warnings: string[] = [];
  if (runs.length !== distinct) warnings.push(`${runs.length - distinct} handler runs were of tasks that had already run`);
  const target = spec.rate ?? 100;
  if (Math.abs(enqueue.startsPerSecond - target) > 0.05 * target) {
    warnings.push(`enqueues ran at ${enqueue.startsPerSecond.toFixed(1)}/s, not ${target}/s (slowest call ${enqueue.slowestStartMs.toFixed(1)} ms)`);
  }
  return {
    measurements,
    checks: [`${sorted.length} latency samples, ${distinct} distinct tasks`],
    warnings,
    details: {
      tasks: spec.count,
      startsPerSecond: enqueue.startsPerSecond,
      slowestStartMs: enqueue.slowestStartMs,
      minLatencyMs: sorted[0] as number,
    },
  };
}
