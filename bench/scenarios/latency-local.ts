import { sleep } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { underwayDb } from "../lib/runtime.ts";
import { BenchNoop, type RunRecord } from "../lib/tasks.ts";
import { Task } from "../lib/underway.ts";
import { startUnderwayWorker } from "../systems/underway.ts";
import { enqueueAtRate, IDLE_BEFORE_MS, LATENCY_CONCURRENCY, report, UNDERWAY_LATENCY_POLL_MS, waitForAll, type EnqueueStats } from "./latency.ts";

/**
 * Scenario 4b, underway only: as 4, but the tasks are started by the worker's own runtime, so the
 * runtime can wake its worker without going through the store.
 */
export async function latencyLocal(spec: ChildSpec): Promise<RoundResult> {
  const runs: RunRecord[] = [];
  const worker = await startUnderwayWorker(underwayDb(spec), spec, {
    concurrency: LATENCY_CONCURRENCY,
    onRun: (run) => runs.push(run),
    pollIntervalMs: UNDERWAY_LATENCY_POLL_MS,
  });
  let enqueue: EnqueueStats;
  try {
    await sleep(IDLE_BEFORE_MS);
    const add = (payload: { n: number; enqueuedAt: number }): Promise<unknown> => worker.runtime.run(() => Task.startNew(BenchNoop, payload));
    enqueue = await enqueueAtRate(spec, add);
    await waitForAll(worker, spec, runs);
  } finally {
    await worker.stop();
  }
  return report(spec, runs, enqueue);
}

