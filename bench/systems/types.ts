/**
 * The child-side face of a queue system: what every scenario needs of underway and of each peer,
 * built on each library's public API (bench/systems/<system>.ts). One instance per child process,
 * on the round's own schema, file or key prefix.
 */
import type { BenchPayload, RunSink } from "../lib/tasks.ts";

/** The enqueuing side: a process that starts tasks and runs none. */
export interface Producer {
  /** Enqueues one task; resolves once the system has acknowledged (stored) it. */
  add(payload: BenchPayload): Promise<void>;
  /** Enqueues many in one call of the library's bulk API. */
  addMany(payloads: readonly BenchPayload[]): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerOptions {
  readonly concurrency: number;
  /** Called once per handler run, from the handler (or, for threads, relayed from it). */
  readonly onRun: RunSink;
  /** underway only: an idle worker's fallback poll, ms (latency: only the wake-up should count). */
  readonly pollIntervalMs?: number;
}

export interface RunningWorker {
  /**
   * Resolves with the monotonic time at which the system had stored the completion of `expected`
   * tasks, or null if that did not happen by `deadline` (monotonic ms). Systems that report each
   * stored completion (underway's taskSucceeded, BullMQ's completed) are timed by those events;
   * the others by polling their store every 10 ms once every handler has run.
   */
  completed(expected: number, handlerRuns: () => number, deadline: number): Promise<number | null>;
  /** Stops taking tasks, lets running ones finish, and closes the worker's connections. */
  stop(): Promise<void>;
}

export interface QueueSystem {
  /** Creates the system's tables or keys (its migrations), so that no measurement includes them. */
  setup(): Promise<void>;
  producer(): Promise<Producer>;
  startWorker(options: WorkerOptions): Promise<RunningWorker>;
  /** Tasks stored and not yet done (queued, running, or waiting to be retried). */
  pending(): Promise<number>;
  /** Releases what setup() and pending() opened. */
  close(): Promise<void>;
}
