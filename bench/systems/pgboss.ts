/**
 * pg-boss 10 through its public API: start, createQueue, send, insert, work, getQueueSize, stop.
 * pg-boss 10 runs one batch per work() call and poll (it waits out the polling interval after
 * each fetch, full or empty); its maintainer's advice for concurrency is a batch handled with
 * Promise.allSettled (timgit/pg-boss#542), which is what concurrency c means here.
 */
import PgBoss from "pg-boss";
import { monotonicNow, sharedNow } from "../lib/clock.ts";
import type { ChildSpec } from "../lib/protocol.ts";
import type { BenchPayload } from "../lib/tasks.ts";
import { pollUntilStored, RunCounter } from "./common.ts";
import type { Producer, QueueSystem, RunningWorker, WorkerOptions } from "./types.ts";

const QUEUE = "bench_noop";
/** The shortest polling interval pg-boss 10 accepts (its default is 2 s). */
export const PGBOSS_POLLING_INTERVAL_SECONDS = 0.5;

export function pgBossSystem(spec: ChildSpec): QueueSystem {
  const { pgUrl: connectionString, pgSchema: schema } = spec.target;
  if (!connectionString || !schema) throw new Error(`${spec.system}: the spec names no PostgreSQL URL and schema`);
  let inspector: PgBoss | null = null;

  const open = async (): Promise<PgBoss> => {
    const boss = new PgBoss({ connectionString, schema });
    // pg-boss emits errors (e.g. of its maintenance) as events; without a listener they would throw.
    boss.on("error", (error) => process.stderr.write(`pg-boss error: ${error.message}\n`));
    await boss.start();
    return boss;
  };
  const close = (boss: PgBoss): Promise<void> => boss.stop({ graceful: true, wait: true, timeout: 5_000 });

  const system: QueueSystem = {
    async setup() {
      const boss = await open();
      try {
        await boss.createQueue(QUEUE);
      } finally {
        await close(boss);
      }
    },

    async producer(): Promise<Producer> {
      const boss = await open();
      return {
        add: async (payload: BenchPayload) => {
          await boss.send(QUEUE, payload);
        },
        addMany: async (payloads: readonly BenchPayload[]) => {
          await boss.insert(payloads.map((data) => ({ name: QUEUE, data })));
        },
        close: () => close(boss),
      };
    },

    async startWorker(options: WorkerOptions): Promise<RunningWorker> {
      const counter = new RunCounter(options.onRun);
      const boss = await open();
      const handle = async (job: PgBoss.Job<BenchPayload>): Promise<void> => {
        const startedAt = sharedNow();
        counter.sink({
          id: job.id,
          n: job.data.n,
          startedAt,
          ...(job.data.enqueuedAt !== undefined ? { enqueuedAt: job.data.enqueuedAt } : {}),
          thread: false,
          kind: "noop",
        });
      };
      await boss.work<BenchPayload>(
        QUEUE,
        { batchSize: options.concurrency, pollingIntervalSeconds: PGBOSS_POLLING_INTERVAL_SECONDS },
        async (jobs) => {
          await Promise.allSettled(jobs.map(handle));
        },
      );
      return {
        completed: (expected, _runs, deadline) => pollUntilStored(counter, expected, () => system.pending(), deadline),
        stop: async () => {
          const at = monotonicNow();
          await close(boss);
          if (monotonicNow() - at > 10_000) process.stderr.write("pg-boss took over 10 s to stop\n");
        },
      };
    },

    async pending() {
      inspector ??= await open();
      // Jobs in a state before "completed": created, retry, active.
      return inspector.getQueueSize(QUEUE, { before: "completed" });
    },

    async close() {
      if (inspector) await close(inspector);
      inspector = null;
    },
  };
  return system;
}
