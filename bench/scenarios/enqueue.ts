import { Task } from "../lib/underway.ts";
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { expectCounts, openRuntime } from "../lib/runtime.ts";
import { perSecond } from "../lib/stats.ts";
import { BenchNoop } from "../lib/tasks.ts";

/** Scenario 1: awaited Task.startNew calls, one after another; each is its own commit. */
export async function enqueueSingle(spec: ChildSpec): Promise<RoundResult> {
  const runtime = await openRuntime(spec.db, false);
  try {
    const started = monotonicNow();
    await runtime.run(async () => {
      for (let n = 0; n < spec.count; n++) await Task.startNew(BenchNoop, { n });
    });
    const elapsedMs = monotonicNow() - started;
    const check = await expectCounts(runtime, { queued: spec.count }, "enqueue-single");
    return {
      measurements: [{ key: "rate", label: "throughput", unit: "tasks/s", value: perSecond(spec.count, elapsedMs) }],
      checks: [`${check} after the run`],
      details: { tasks: spec.count, elapsedMs },
    };
  } finally {
    await runtime.stop();
  }
}

/** Scenario 2: Task.startNewMany with `batch` tasks per call; each call is one transaction. */
export async function enqueueBulk(spec: ChildSpec): Promise<RoundResult> {
  const batch = spec.batch ?? 1_000;
  const runtime = await openRuntime(spec.db, false);
  try {
    const parameters = Array.from({ length: spec.count }, (_, n) => ({ n }));
    const started = monotonicNow();
    await runtime.run(async () => {
      for (let i = 0; i < spec.count; i += batch) await Task.startNewMany(BenchNoop, parameters.slice(i, i + batch));
    });
    const elapsedMs = monotonicNow() - started;
    const check = await expectCounts(runtime, { queued: spec.count }, "enqueue-bulk");
    return {
      measurements: [{ key: "rate", label: "throughput", unit: "tasks/s", value: perSecond(spec.count, elapsedMs) }],
      checks: [`${check} after the run`],
      details: { tasks: spec.count, batch, elapsedMs },
    };
  } finally {
    await runtime.stop();
  }
}
