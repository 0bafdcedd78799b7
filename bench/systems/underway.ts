/** underway on SQLite or PostgreSQL, through its public API: createRuntime, Task.startNew(Many), events. */
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec } from "../lib/protocol.ts";
import { openRuntime, pendingTasks, underwayDb } from "../lib/runtime.ts";
import { BenchNoop, collectRuns, type BenchPayload } from "../lib/tasks.ts";
import { Task, type Runtime } from "../lib/underway.ts";
import type { Producer, QueueSystem, RunningWorker, WorkerOptions } from "./types.ts";

export function underwaySystem(spec: ChildSpec): QueueSystem {
  const db = underwayDb(spec);
  let inspector: Runtime | null = null;
  return {
    async setup() {
      const runtime = await openRuntime(db, { worker: false, maintenance: false });
      await runtime.stop();
    },

    async producer(): Promise<Producer> {
      const runtime = await openRuntime(db, { worker: false });
      return {
        add: async (payload: BenchPayload) => {
          await runtime.run(() => Task.startNew(BenchNoop, payload));
        },
        addMany: async (payloads: readonly BenchPayload[]) => {
          await runtime.run(() => Task.startNewMany(BenchNoop, [...payloads]));
        },
        close: () => runtime.stop(),
      };
    },

    async startWorker(options: WorkerOptions): Promise<RunningWorker> {
      return startUnderwayWorker(db, spec, options);
    },

    async pending() {
      inspector ??= await openRuntime(db, { worker: false, maintenance: false });
      return pendingTasks(inspector);
    },

    async close() {
      await inspector?.stop();
      inspector = null;
    },
  };
}

/**
 * A runtime with a worker. Completions are timed by taskSucceeded, which the runtime emits once
 * the outcome is stored. A task that fails, dies or is released fails the round: the tasks are
 * no-ops, so that is a fault, not a measurement.
 */
export async function startUnderwayWorker(db: string, spec: ChildSpec, options: WorkerOptions): Promise<RunningWorker & { runtime: Runtime }> {
  let succeeded = 0;
  let lastSucceededAt = 0;
  let problem: Error | null = null;
  const waiters = new Set<() => void>();
  const wake = (): void => waiters.forEach((w) => w());
  const stopCollecting = collectRuns(options.onRun);
  const runtime = await openRuntime(db, {
    worker: {
      concurrency: options.concurrency,
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    },
    ...(spec.isolation ? { isolation: spec.isolation } : {}),
    beforeStart: (r) => {
      r.on("taskSucceeded", (e) => {
        if (e.name !== "BenchNoop") return;
        succeeded++;
        lastSucceededAt = monotonicNow();
        wake();
      });
      for (const event of ["taskFailed", "taskDead", "taskReleased"] as const) {
        r.on(event, (e) => {
          // A runaway task ends when the round stops its runtime: not a fault.
          if (e.name !== "BenchNoop") return;
          const message = "error" in e && e.error ? `: ${e.error.message}` : "";
          problem ??= new Error(`task ${e.taskId} (${e.name}): unexpected ${event}${message}`);
          wake();
        });
      }
    },
  });
  return {
    runtime,
    completed(expected, _handlerRuns, deadline) {
      return new Promise<number | null>((resolve, reject) => {
        const check = (): void => {
          if (problem) finish(() => reject(problem));
          else if (succeeded >= expected) finish(() => resolve(lastSucceededAt));
        };
        const timer = setTimeout(() => finish(() => resolve(null)), Math.max(0, deadline - monotonicNow()));
        const finish = (then: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      // A runaway task never returns: the grace period ends it (or its thread).
      await runtime.stop({ graceMs: 1_000 });
      stopCollecting();
    },
  };
}
