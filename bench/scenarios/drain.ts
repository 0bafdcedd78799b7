import { Task, type Runtime } from "../lib/underway.ts";
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { expectCounts, openRuntime } from "../lib/runtime.ts";
import { perSecond } from "../lib/stats.ts";
import { BenchNoop, noopRuns } from "../lib/tasks.ts";

/**
 * Scenario 3: `count` queued no-op tasks, stored beforehand by a runtime without a worker, then
 * run by a new runtime with one worker at the given concurrency. Measured: from just before that
 * runtime's start() to the last taskSucceeded event (emitted once the outcome is stored).
 */
export async function drain(spec: ChildSpec): Promise<RoundResult> {
  const concurrency = spec.concurrency ?? 10;
  const batch = spec.batch ?? 1_000;
  const deadline = monotonicNow() + spec.timeLimitMs;

  const loader = await openRuntime(spec.db, false);
  try {
    const parameters = Array.from({ length: spec.count }, (_, n) => ({ n }));
    await loader.run(async () => {
      for (let i = 0; i < spec.count; i += batch) await Task.startNewMany(BenchNoop, parameters.slice(i, i + batch));
    });
    await expectCounts(loader, { queued: spec.count }, "drain, before the worker starts");
  } finally {
    await loader.stop();
  }

  let succeeded = 0;
  let lastSucceededAt = 0;
  let problem: string | null = null;
  let settle: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (settle = resolve));
  const listen = (runtime: Runtime): void => {
    runtime.on("taskSucceeded", () => {
      succeeded++;
      lastSucceededAt = monotonicNow();
      if (succeeded === spec.count) settle();
    });
    const fail = (what: string) => (e: { taskId: string; error?: { message: string } }) => {
      problem ??= `task ${e.taskId} ${what}${e.error ? `: ${e.error.message}` : ""}`;
      settle();
    };
    runtime.on("taskFailed", fail("failed"));
    runtime.on("taskDead", fail("is dead"));
    runtime.on("taskReleased", fail("was released"));
  };

  const started = monotonicNow();
  const runtime = await openRuntime(spec.db, { concurrency }, listen);
  try {
    const timer = setTimeout(settle, Math.max(0, deadline - monotonicNow()));
    await finished;
    clearTimeout(timer);
    if (problem !== null) throw new Error(`drain c=${concurrency}: ${problem}`);
    if (succeeded !== spec.count) {
      throw new Error(`drain c=${concurrency}: only ${succeeded} of ${spec.count} tasks succeeded within the time limit`);
    }
    const elapsedMs = lastSucceededAt - started;
    const check = await expectCounts(runtime, { succeeded: spec.count }, `drain c=${concurrency}`);
    const distinct = new Set(noopRuns).size;
    if (noopRuns.length !== spec.count || distinct !== spec.count) {
      throw new Error(
        `drain c=${concurrency}: the handler ran ${noopRuns.length} times for ${distinct} distinct tasks; expected ${spec.count} runs of ${spec.count} tasks`,
      );
    }
    return {
      measurements: [{ key: "rate", label: "throughput", unit: "tasks/s", value: perSecond(spec.count, elapsedMs) }],
      checks: [`${check}; ${noopRuns.length.toLocaleString("en-US")} handler runs, none twice`],
      details: { tasks: spec.count, concurrency, elapsedMs },
    };
  } finally {
    await runtime.stop({ graceMs: 1_000 });
  }
}
