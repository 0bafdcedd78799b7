/**
 * graphile-worker 0.17 through its public API: makeWorkerUtils (migrate, addJob, addJobs,
 * withPgClient) and run(). Two variants: its defaults, and the batching settings of its
 * performance page (a local queue of 500 jobs, batched completion and failure).
 */
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from "graphile-worker";
import { sharedNow } from "../lib/clock.ts";
import { quoteIdentifier } from "../lib/postgres.ts";
import type { ChildSpec } from "../lib/protocol.ts";
import type { BenchPayload } from "../lib/tasks.ts";
import { pollUntilStored, RunCounter } from "./common.ts";
import type { Producer, QueueSystem, RunningWorker, WorkerOptions } from "./types.ts";

const TASK = "bench_noop";

/** graphile-worker logs every job at info level: the benchmark keeps it quiet, as underway's `logger: false`. */
const silent = new Logger(() => () => undefined);

/** The batching settings of worker.graphile.org/docs/performance ("Batching options"). */
export const GRAPHILE_BATCHING = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } as const;

function isPayload(value: unknown): value is BenchPayload {
  return typeof value === "object" && value !== null && typeof (value as { n?: unknown }).n === "number";
}

export function graphileSystem(spec: ChildSpec, batched: boolean): QueueSystem {
  const { pgUrl: connectionString, pgSchema: schema } = spec.target;
  if (!connectionString || !schema) throw new Error(`${spec.system}: the spec names no PostgreSQL URL and schema`);
  let inspector: WorkerUtils | null = null;
  const utils = (): Promise<WorkerUtils> => makeWorkerUtils({ connectionString, schema, logger: silent });

  const system: QueueSystem = {
    async setup() {
      const u = await utils();
      try {
        await u.migrate();
      } finally {
        await u.release();
      }
    },

    async producer(): Promise<Producer> {
      const u = await utils();
      return {
        add: async (payload) => {
          await u.addJob(TASK, payload);
        },
        addMany: async (payloads) => {
          await u.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
        },
        close: async () => {
          await u.release();
        },
      };
    },

    async startWorker(options: WorkerOptions): Promise<RunningWorker> {
      const counter = new RunCounter(options.onRun);
      const runner: Runner = await run({
        connectionString,
        schema,
        concurrency: options.concurrency,
        maxPoolSize: Math.max(10, options.concurrency + 2),
        noHandleSignals: true,
        logger: silent,
        crontab: "",
        taskList: {
          [TASK]: (payload, helpers) => {
            const startedAt = sharedNow();
            if (!isPayload(payload)) throw new Error(`job ${helpers.job.id}: unexpected payload ${JSON.stringify(payload)}`);
            counter.sink({
              id: helpers.job.id,
              n: payload.n,
              startedAt,
              ...(payload.enqueuedAt !== undefined ? { enqueuedAt: payload.enqueuedAt } : {}),
              thread: false,
              kind: "noop",
            });
          },
        },
        ...(batched ? { preset: { worker: { ...GRAPHILE_BATCHING } } } : {}),
      });
      return {
        completed: (expected, _runs, deadline) => pollUntilStored(counter, expected, () => system.pending(), deadline),
        stop: () => runner.stop(),
      };
    },

    async pending() {
      inspector ??= await utils();
      return inspector.withPgClient(async (client) => {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdentifier(schema)}.jobs`);
        return rows[0]?.n ?? 0;
      });
    },

    async close() {
      await inspector?.release();
      inspector = null;
    },
  };
  return system;
}
