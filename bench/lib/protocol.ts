/**
 * What the orchestrator (bench/run.ts) and its child processes (bench/child.ts) exchange. A child
 * gets one ChildSpec as its only argument and answers with one ChildMessage over the IPC channel.
 */

/** Everything a child can be asked to run. */
export type ScenarioId =
  | "enqueue-single"
  | "enqueue-bulk"
  | "drain"
  | "latency-local"
  | "latency-cross"
  | "raw-sqlite"
  | "raw-postgres"
  /** Not a scenario of its own: the enqueuing process of latency-cross. */
  | "enqueuer";

/** The stores the benchmark runs on. */
export const STORES = ["sqlite", "postgres"] as const;
export type Store = (typeof STORES)[number];

export interface ChildSpec {
  readonly scenario: ScenarioId;
  readonly store: Store;
  /**
   * What createRuntime's `db` gets: for SQLite a fresh file in its own temporary folder, for
   * PostgreSQL a `postgres://...?schema=bench_<pid>_<n>` URL naming a fresh schema (created by the
   * runtime's migrations). The parent removes the folder, or drops the schema, afterwards.
   */
  readonly db: string;
  /** Tasks (or rows) the scenario handles. */
  readonly count: number;
  /** Worker concurrency (drain). */
  readonly concurrency?: number;
  /** Tasks per Task.startNewMany call (enqueue-bulk, drain's pre-insert). */
  readonly batch?: number;
  /** Starts per second (latency scenarios). */
  readonly rate?: number;
  /** The child's own time limit, ms: it fails by itself a little before the parent kills it. */
  readonly timeLimitMs: number;
  /** Extra node flags for grandchildren (the enqueuer of latency-cross), e.g. --cpu-prof. */
  readonly execArgv?: readonly string[];
  /**
   * Profiled PostgreSQL rounds: count the statements sent to the server and write them to this
   * JSON file (bench/lib/statements.ts). The enqueuer of latency-cross writes its own, `*.enqueuer.json`.
   */
  readonly statementsFile?: string;
}

export type Unit = "tasks/s" | "rows/s" | "ms";

/** One number a round produced. `key` identifies the same figure across rounds. */
export interface Measurement {
  readonly key: string;
  readonly label: string;
  readonly unit: Unit;
  readonly value: number;
}

/** What one round of a scenario reports. */
export interface RoundResult {
  readonly measurements: readonly Measurement[];
  /** Verifications that passed, in words ("20,000 succeeded, 0 ran twice"). A failed one throws. */
  readonly checks: readonly string[];
  /** Raw figures kept in the JSON only (elapsed ms, counts, ...). */
  readonly details: Readonly<Record<string, number | string>>;
}

export type ChildMessage =
  | { readonly type: "result"; readonly result: RoundResult }
  | { readonly type: "error"; readonly message: string; readonly stack?: string };

export function isChildMessage(value: unknown): value is ChildMessage {
  if (typeof value !== "object" || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === "result" || type === "error";
}
