/**
 * underway's benchmark task classes. They may run on the worker's event loop or, with isolation,
 * in a worker thread that loads this module by itself (`taskModule`): so it imports nothing but
 * Node and the shared clock, and reports each run to the main thread over a BroadcastChannel when
 * it runs elsewhere. On the main thread a run is reported by a plain function call, as the peers'
 * handlers are, so that reporting costs underway no more than it costs them.
 */
import { BroadcastChannel, isMainThread } from "node:worker_threads";
import { sharedNow } from "./clock.ts";
import type { IBackgroundTask, TaskContext } from "./underway.ts";

/** What every benchmark task carries: its index, and for latency the time of its enqueue call. */
export interface BenchPayload {
  readonly n: number;
  /** Shared-clock time taken just before the enqueue call (latency scenario). */
  readonly enqueuedAt?: number;
}

/** One handler run, as a scenario receives it from any system. */
export interface RunRecord {
  /** The system's id of the task (job). */
  readonly id: string;
  readonly n: number;
  /** Shared-clock time at which the handler started. */
  readonly startedAt: number;
  readonly enqueuedAt?: number;
  /** True when the handler ran in a worker thread rather than on the main thread. */
  readonly thread: boolean;
  /** The task class that ran ("noop", "runaway", "probe"). */
  readonly kind: "noop" | "runaway" | "probe";
}

export type RunSink = (run: RunRecord) => void;

const CHANNEL = "underway-bench-runs";
let sink: RunSink | null = null;
let sender: BroadcastChannel | null = null;

/**
 * Receives the runs of this process's benchmark tasks: on the main thread directly, from worker
 * threads over the channel (a message carries the runs of one turn of a thread's event loop).
 * Returns a function that stops listening.
 */
export function collectRuns(receive: RunSink): () => void {
  sink = receive;
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event: unknown) => {
    for (const run of (event as { data: RunRecord[] }).data) receive(run);
  };
  channel.unref();
  return () => {
    sink = null;
    channel.close();
  };
}

/** A thread's runs not sent yet: they go together at the end of the turn. */
let unsent: RunRecord[] = [];

function sendUnsent(): void {
  const runs = unsent;
  unsent = [];
  sender ??= new BroadcastChannel(CHANNEL);
  sender.postMessage(runs);
}

/**
 * On the main thread, a plain call (as the peers' handlers report). In a thread, one message per
 * turn of its event loop rather than one per run: the benchmark's own reporting should cost the
 * thread (and the worker's thread, which receives it) as little as it can. `now`: sent at once,
 * for a run that never gives its thread another turn (a runaway).
 */
function report(run: RunRecord, now: boolean): void {
  if (isMainThread) {
    sink?.(run);
    return;
  }
  unsent.push(run);
  if (now) sendUnsent();
  // Scheduled while the task runs, so before the thread's own end-of-turn message that reports the
  // run done (thread-main.ts sends it from a setImmediate after the run returns): the report
  // leaves before the worker can hear of the end and, at a round's end, stop the thread.
  else if (unsent.length === 1) setImmediate(sendUnsent);
}

function record(kind: RunRecord["kind"], parameters: BenchPayload, context: TaskContext): void {
  report(
    {
      id: context.taskId,
      n: parameters.n,
      startedAt: sharedNow(),
      ...(parameters.enqueuedAt !== undefined ? { enqueuedAt: parameters.enqueuedAt } : {}),
      thread: !isMainThread,
      kind,
    },
    kind === "runaway",
  );
}

/** A task that does nothing but report that it ran. */
export class BenchNoop implements IBackgroundTask<BenchPayload> {
  static readonly taskModule = import.meta.url;
  run(parameters: BenchPayload, context: TaskContext): void {
    record("noop", parameters, context);
  }
}

/**
 * A task that never returns and never yields: a synchronous endless loop, the worst a task can do
 * to a worker. With isolation its thread is stopped at the timeout (10 minutes, longer than any
 * round); without, it would block the worker's event loop, so the benchmark starts it only with
 * isolation on. Higher priority than BenchNoop, so it is claimed first.
 */
export class BenchRunaway implements IBackgroundTask<BenchPayload> {
  static readonly taskModule = import.meta.url;
  static readonly taskOptions = { maxAttempts: 1, timeoutMs: 600_000, priority: 10 };
  run(parameters: BenchPayload, context: TaskContext): void {
    record("runaway", parameters, context);
    for (;;) {
      // Spins until its thread is stopped.
    }
  }
}

/** Reports where it ran: tells whether the runtime honoured `isolation: { mode: "thread" }`. */
export class BenchProbe implements IBackgroundTask<BenchPayload> {
  static readonly taskModule = import.meta.url;
  static readonly taskOptions = { maxAttempts: 1, timeoutMs: 30_000 };
  run(parameters: BenchPayload, context: TaskContext): void {
    record("probe", parameters, context);
  }
}
