/**
 * What the orchestrator (bench/run.ts) and its child processes (bench/child.ts) exchange. A child
 * gets one ChildSpec as its only argument and answers with one ChildMessage over the IPC channel.
 */
import type { SystemId } from "./systems.ts";

/** Everything a child can be asked to run. */
export type ScenarioId =
  | "enqueue-single"
  | "enqueue-bulk"
  | "drain"
  | "latency"
  | "latency-local"
  | "isolation"
  | "memory"
  | "limit-sqlite"
  | "limit-postgres"
  | "limit-thread"
  /** Not a scenario of its own: the process that enqueues for `latency` and `memory`. */
  | "enqueuer";

/**
 * Where a round's data lives. The orchestrator makes a fresh one per round and removes it after:
 * a SQLite file in its own temporary folder, a PostgreSQL schema, a Redis key prefix.
 */
export interface Target {
  /** SQLite: the database file. */
  readonly sqliteFile?: string;
  /** PostgreSQL: the server and database, without `?schema=`. */
  readonly pgUrl?: string;
  /** PostgreSQL: the round's schema (`bench_<pid>_<n>`), created by the system's own migrations. */
  readonly pgSchema?: string;
  /** Redis: the server. */
  readonly redisUrl?: string;
  /** Redis: the round's key prefix (`bench_<pid>_<n>`). */
  readonly redisPrefix?: string;
}

/** underway's worker isolation, passed to createRuntime as `isolation: { mode }`. */
export type IsolationMode = "thread" | "none";

export interface ChildSpec {
  readonly scenario: ScenarioId;
  /** The queue system under test, or "machine" for the limits measured without a queue library. */
  readonly system: SystemId;
  readonly target: Target;
  /** Tasks (or rows, or round trips) the scenario handles. */
  readonly count: number;
  /** Worker concurrency (drain, latency, memory, isolation). */
  readonly concurrency?: number;
  /** Tasks per bulk call (enqueue-bulk, and loading the drain's tasks). */
  readonly batch?: number;
  /** Enqueues per second (latency). */
  readonly rate?: number;
  /**
   * The measurement's own time limit, ms: a scenario that has not handled `count` tasks by then
   * stops and reports the rate of what it handled (marked as stopped at the time limit).
   */
  readonly budgetMs?: number;
  /** Limits: operations timed each after the process sat idle (bench/lib/raw.ts afterIdle). */
  readonly idleSamples?: number;
  /** Memory: how long the worker sits idle before the idle reading, ms. */
  readonly idleMs?: number;
  /** underway only: createRuntime's `isolation: { mode }` (isolation scenarios). */
  readonly isolation?: IsolationMode;
  /** underway only: runaway tasks (a synchronous endless loop) started before the drain. */
  readonly runaways?: number;
  /** The child's own time limit, ms: it fails by itself a little before the parent kills it. */
  readonly timeLimitMs: number;
  /** Extra node flags for grandchildren (the enqueuer), e.g. --cpu-prof. */
  readonly execArgv?: readonly string[];
  /**
   * Profiled PostgreSQL rounds: count the statements sent to the server and write them to this
   * JSON file (bench/lib/statements.ts). The enqueuer writes its own, `*.enqueuer.json`.
   */
  readonly statementsFile?: string;
}

export type Unit = "tasks/s" | "rows/s" | "round trips/s" | "ms" | "µs" | "MB" | "count" | "%";

/** One number a round produced. `key` identifies the same figure across rounds. */
export interface Measurement {
  readonly key: string;
  readonly label: string;
  readonly unit: Unit;
  readonly value: number;
  /**
   * Set when the round stopped at its time limit before handling every task: the value is the
   * rate of what it handled. Says how far it got.
   */
  readonly partial?: string;
}

/** What one round of a scenario reports. */
export interface RoundResult {
  readonly measurements: readonly Measurement[];
  /** What was verified, in words ("20,000 ran once, 0 twice, 0 lost"). */
  readonly checks: readonly string[];
  /**
   * Problems the round found but measured through (a task that ran twice, one that was lost):
   * reported in the table, never thrown, so one system's fault does not stop the comparison.
   */
  readonly warnings?: readonly string[];
  /** The scenario cannot run on this build (e.g. "isolation not available"): shown as n/a. */
  readonly unavailable?: string;
  /** Raw figures kept in the JSON only (elapsed ms, counts, ...). */
  readonly details: Readonly<Record<string, number | string | boolean>>;
}

export type ChildMessage =
  | { readonly type: "result"; readonly result: RoundResult }
  | { readonly type: "error"; readonly message: string; readonly stack?: string };

export function isChildMessage(value: unknown): value is ChildMessage {
  if (typeof value !== "object" || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === "result" || type === "error";
}
