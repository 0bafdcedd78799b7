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
  /** Not a scenario of its own: the enqueuing process of latency-cross. */
  | "enqueuer";

export interface ChildSpec {
  readonly scenario: ScenarioId;
  /** A fresh SQLite file in its own temporary folder; the parent removes the folder afterwards. */
  readonly dbPath: string;
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
