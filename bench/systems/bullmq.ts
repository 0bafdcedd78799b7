/** BullMQ on Redis through its public API: Queue (add, addBulk, getJobCounts) and Worker. */
import { Queue, Worker, type ConnectionOptions, type Job } from "bullmq";
import { monotonicNow, sharedNow } from "../lib/clock.ts";
import type { ChildSpec } from "../lib/protocol.ts";
import type { BenchPayload } from "../lib/tasks.ts";
import { RunCounter } from "./common.ts";
import type { Producer, QueueSystem, RunningWorker, WorkerOptions } from "./types.ts";

const QUEUE = "bench_noop";
const JOB = "noop";

function connectionOf(url: string): ConnectionOptions {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

export function bullmqSystem(spec: ChildSpec): QueueSystem {
  const { redisUrl, redisPrefix: prefix } = spec.target;
  if (!redisUrl || !prefix) throw new Error(`${spec.system}: the spec names no Redis URL and key prefix`);
  const connection = connectionOf(redisUrl);
  let inspector: Queue | null = null;
  const queue = (): Queue => new Queue(QUEUE, { connection, prefix });

  const system: QueueSystem = {
    async setup() {
      const q = queue();
      await q.waitUntilReady();
      await q.close();
    },

    async producer(): Promise<Producer> {
      const q = queue();
      await q.waitUntilReady();
      return {
        add: async (payload: BenchPayload) => {
          await q.add(JOB, payload);
        },
        addMany: async (payloads: readonly BenchPayload[]) => {
          await q.addBulk(payloads.map((data) => ({ name: JOB, data })));
        },
        close: () => q.close(),
      };
    },

    async startWorker(options: WorkerOptions): Promise<RunningWorker> {
      const counter = new RunCounter(options.onRun);
      let completed = 0;
      let lastCompletedAt = 0;
      const waiters = new Set<() => void>();
      const worker = new Worker<BenchPayload>(
        QUEUE,
        async (job: Job<BenchPayload>) => {
          const startedAt = sharedNow();
          counter.sink({
            id: job.id ?? "(no id)",
            n: job.data.n,
            startedAt,
            ...(job.data.enqueuedAt !== undefined ? { enqueuedAt: job.data.enqueuedAt } : {}),
            thread: false,
            kind: "noop",
          });
        },
        { connection, prefix, concurrency: options.concurrency },
      );
      let problem: Error | null = null;
      // "completed" is emitted once the job has been moved to the completed set in Redis.
      worker.on("completed", () => {
        completed++;
        lastCompletedAt = monotonicNow();
        waiters.forEach((w) => w());
      });
      worker.on("failed", (job, error) => {
        problem ??= new Error(`job ${job?.id ?? "?"} failed: ${error.message}`);
        waiters.forEach((w) => w());
      });
      worker.on("error", (error) => {
        problem ??= error;
        waiters.forEach((w) => w());
      });
      await worker.waitUntilReady();
      return {
        completed: (expected, _runs, deadline) =>
          new Promise<number | null>((resolve, reject) => {
            const check = (): void => {
              if (problem) finish(() => reject(problem));
              else if (completed >= expected) finish(() => resolve(lastCompletedAt));
            };
            const timer = setTimeout(() => finish(() => resolve(null)), Math.max(0, deadline - monotonicNow()));
            const finish = (then: () => void): void => {
              clearTimeout(timer);
              waiters.delete(check);
              then();
            };
            waiters.add(check);
            check();
          }),
        stop: () => worker.close(),
      };
    },

    async pending() {
      inspector ??= queue();
      const counts = await inspector.getJobCounts("wait", "active", "delayed", "prioritized", "waiting-children");
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    },

    async close() {
      await inspector?.close();
      inspector = null;
    },
  };
  return system;
}
