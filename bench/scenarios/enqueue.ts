import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { perSecond } from "../lib/stats.ts";
import { openSystem } from "../systems/index.ts";
import type { Producer } from "../systems/types.ts";

const n = (count: number): string => count.toLocaleString("en-US");

/**
 * Scenarios 1 and 2: a process that only enqueues. `perCall` tasks per call (1: the single-task
 * API, awaited one after another; more: the bulk API). The system's tables are created first
 * (setup), outside the timing. Stops early at the time limit (`budgetMs`) and reports the rate of
 * what it enqueued by then.
 */
async function enqueue(spec: ChildSpec, perCall: number): Promise<RoundResult> {
  const system = await openSystem(spec);
  try {
    await system.setup();
    const producer: Producer = await system.producer();
    const payloads = Array.from({ length: spec.count }, (_, i) => ({ n: i }));
    let enqueued = 0;
    let elapsedMs: number;
    const budgetMs = spec.budgetMs ?? spec.timeLimitMs - 10_000;
    try {
      const started = monotonicNow();
      const deadline = started + budgetMs;
      if (perCall === 1) {
        while (enqueued < spec.count && monotonicNow() < deadline) await producer.add(payloads[enqueued++] as { n: number });
      } else {
        while (enqueued < spec.count && monotonicNow() < deadline) {
          const chunk = payloads.slice(enqueued, enqueued + perCall);
          await producer.addMany(chunk);
          enqueued += chunk.length;
        }
      }
      elapsedMs = monotonicNow() - started;
    } finally {
      await producer.close();
    }
    const stored = await system.pending();
    const complete = enqueued === spec.count;
    const warnings = stored === enqueued ? [] : [`${n(enqueued)} enqueue calls acknowledged, but the store holds ${n(stored)} pending tasks`];
    return {
      measurements: [
        {
          key: "rate",
          label: "throughput",
          unit: "tasks/s",
          value: perSecond(enqueued, elapsedMs),
          ...(complete ? {} : { partial: `${n(enqueued)} of ${n(spec.count)} in ${budgetMs / 1000} s` }),
        },
      ],
      checks: [`${n(stored)} stored${complete ? "" : ` (stopped at the time limit after ${n(enqueued)})`}`],
      warnings,
      details: { tasks: spec.count, enqueued, perCall, elapsedMs, complete },
    };
  } finally {
    await system.close();
  }
}

/** Scenario 1: the single-task API, awaited one call after another. */
export function enqueueSingle(spec: ChildSpec): Promise<RoundResult> {
  return enqueue(spec, 1);
}

/** Scenario 2: the bulk API, `batch` tasks per call. */
export function enqueueBulk(spec: ChildSpec): Promise<RoundResult> {
  return enqueue(spec, spec.batch ?? 1_000);
}
