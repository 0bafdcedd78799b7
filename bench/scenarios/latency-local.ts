import { sleep } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { underwayDb } from "../lib/runtime.ts";
import { BenchNoop, BenchRunaway, type RunRecord } from "../lib/tasks.ts";
import { Task } from "../lib/underway.ts";
import { startUnderwayWorker } from "../systems/underway.ts";
import { enqueueAtRate, IDLE_BEFORE_MS, LATENCY_CONCURRENCY, report, UNDERWAY_LATENCY_POLL_MS, waitForAll, type EnqueueStats } from "./latency.ts";

/**
 * Scenario 4b, underway only: as 4, but the tasks are started by the worker's own runtime, so the
 * runtime can wake its worker without going through the store.
 */
/** How long runaways hold their slots before the measurement starts, ms. */
const RUNAWAYS_SETTLE_MS = 2_000;

export async function latencyLocal(spec: ChildSpec): Promise<RoundResult> {
  const runs: RunRecord[] = [];
  const worker = await startUnderwayWorker(underwayDb(spec), spec, {
    concurrency: LATENCY_CONCURRENCY,
    onRun: (run) => {
      if (run.kind !== "runaway") runs.push(run);
    },
    pollIntervalMs: UNDERWAY_LATENCY_POLL_MS,
  });
  let enqueue: EnqueueStats;
  try {
    // With runaways: that many synchronous endless loops hold slots (in threads) for the whole round.
    for (let i = 0; i < (spec.runaways ?? 0); i++) {
      await worker.runtime.run(() => Task.startNew(BenchRunaway, { n: -1 - i }, { priority: 10, timeoutMs: 600_000 }));
    }
    // With runaways, measure the steady state in which they hold their slots: the pool has had
    // time to see them as long runs and to keep a spare thread booted (docs/isolation.md).
    await sleep(IDLE_BEFORE_MS + ((spec.runaways ?? 0) > 0 ? RUNAWAYS_SETTLE_MS : 0));
    const add = (payload: { n: number; enqueuedAt: number }): Promise<unknown> => worker.runtime.run(() => Task.startNew(BenchNoop, payload));
    enqueue = await enqueueAtRate(spec, add);
    await waitForAll(worker, spec, runs);
  } finally {
    await worker.stop();
  }
  return report(spec, runs, enqueue);
}

