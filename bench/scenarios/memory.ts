import { monotonicNow, sleep } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { runChild } from "../lib/spawn.ts";
import { perSecond } from "../lib/stats.ts";
import { openSystem } from "../systems/index.ts";

const MB = 1024 * 1024;
const n = (count: number): string => count.toLocaleString("en-US");

/** How long a started worker sits idle before the idle reading, unless the spec says. */
const IDLE_MS = 2_000;
/** Quiet time after the last task, before the "after" reading. */
const SETTLE_MS = 1_000;

/**
 * Scenario 5: the worker process's resident memory (RSS). A worker (concurrency from the spec)
 * starts on an empty store and sits idle for 2 s (1 s in quick mode): the idle reading. A second process then enqueues
 * `count` tasks in bulk while the worker runs them; 1 s after the last stored completion (or at
 * the time limit), the second reading, and the process's peak RSS. Under way, RSS is also read
 * when a quarter of the tasks have run and when the last one has (both under load, so they compare:
 * flat memory means the second is within 10% of the first). The worker process loads only its
 * own library (and the benchmark's small harness, the same for every system).
 */
export async function memory(spec: ChildSpec): Promise<RoundResult> {
  const concurrency = spec.concurrency ?? 50;
  const system = await openSystem(spec);
  try {
    await system.setup();
    let runs = 0;
    const worker = await system.startWorker({ concurrency, onRun: () => void runs++ });
    let idleRss: number;
    let afterRss: number;
    let complete: boolean;
    let elapsedMs: number;
    let handled: number;
    let quarterRss: number | null = null;
    let fullRss: number | null = null;
    const quarter = Math.ceil(spec.count / 4);
    const budgetMs = spec.budgetMs ?? spec.timeLimitMs - 20_000;
    try {
      await sleep(spec.idleMs ?? IDLE_MS);
      idleRss = process.memoryUsage.rss();
      const started = monotonicNow();
      const deadline = started + budgetMs;
      const loading = runChild(
        { scenario: "enqueuer", system: spec.system, target: spec.target, count: spec.count, batch: spec.batch ?? 1_000, timeLimitMs: spec.timeLimitMs },
        { killAfterMs: spec.timeLimitMs },
      );
      // A failed load ends the wait at once rather than at the deadline.
      const loadFailed = loading.then(() => new Promise<never>(() => undefined));
      const sampler = setInterval(() => {
        if (quarterRss === null && runs >= quarter) quarterRss = process.memoryUsage.rss();
      }, 20);
      let doneAt: number | null;
      try {
        doneAt = await Promise.race([worker.completed(spec.count, () => runs, deadline), loadFailed]);
        if (doneAt !== null) fullRss = process.memoryUsage.rss();
      } finally {
        clearInterval(sampler);
      }
      complete = doneAt !== null;
      elapsedMs = complete ? (doneAt as number) - started : budgetMs;
      handled = complete ? spec.count : runs;
      await loading;
      await sleep(SETTLE_MS);
      afterRss = process.memoryUsage.rss();
    } finally {
      await worker.stop();
    }
    const peakRss = process.resourceUsage().maxRSS * 1024;
    return {
      measurements: [
        { key: "rss-idle", label: "RSS idle", unit: "MB", value: idleRss / MB },
        {
          key: "rss-after",
          label: "RSS after the tasks",
          unit: "MB",
          value: afterRss / MB,
          ...(complete ? {} : { partial: `${n(handled)} of ${n(spec.count)} tasks in ${budgetMs / 1000} s` }),
        },
        { key: "rss-peak", label: "peak RSS", unit: "MB", value: peakRss / MB },
        ...(quarterRss !== null && fullRss !== null
          ? [
              { key: "rss-quarter", label: `RSS under way, at ${n(quarter)} tasks run`, unit: "MB" as const, value: quarterRss / MB },
              { key: "rss-full", label: `RSS under way, at ${n(spec.count)} tasks run`, unit: "MB" as const, value: fullRss / MB },
              { key: "rss-growth", label: `RSS growth from ${n(quarter)} to ${n(spec.count)} tasks run`, unit: "%" as const, value: ((fullRss - quarterRss) / quarterRss) * 100 },
            ]
          : []),
      ],
      checks: [complete ? `${n(spec.count)} tasks ran` : `stopped at the time limit after ${n(handled)} of ${n(spec.count)} tasks`],
      details: { tasks: spec.count, handled, complete, concurrency, elapsedMs, rate: perSecond(handled, elapsedMs), idleRss, afterRss, peakRss, quarterRss: quarterRss ?? -1, fullRss: fullRss ?? -1 },
    };
  } finally {
    await system.close();
  }
}
