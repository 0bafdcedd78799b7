/** The row shape both stores hand back for a task, once decoded, and its mapping to TaskInfo. */
import { initiatorOf, type InitiatorContext } from "./initiator.ts";
import type { TaskErrorInfo, TaskInfo, TaskState } from "../tasks/types.ts";

/** An error as stored in last_error and in underway_task_errors: `at` in ms. */
export interface ErrorJson {
  attempt: number;
  at: number;
  name: string;
  message: string;
  stack?: string | null;
}

/** A task row with its JSON columns parsed and its flags as booleans. */
export interface DecodedTaskRow {
  id: string | number | bigint;
  name: string;
  queue: string;
  priority: number;
  state: TaskState;
  run_at: number;
  attempt: number;
  max_attempts: number;
  timeout_ms: number;
  worker_id: string | null;
  with_user_connection: boolean;
  user_id: string | null;
  user_context: InitiatorContext | null;
  progress: number | null;
  progress_message: string | null;
  last_error: ErrorJson | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** A running task's lease; a canceled one's while the run it had has not ended. */
  lease_expires_at?: number | null;
  /** Issue #9 columns; absent from rows of queries that do not read them. */
  waiting_for?: number;
  schedule_name?: string | null;
  has_result?: boolean;
}

/**
 * A stored error record as it can be shown: one that is not an object with a name and a message
 * (a column changed by hand) says it cannot be read, on both stores.
 */
export function readableError(value: unknown): ErrorJson {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (typeof record["name"] === "string" && typeof record["message"] === "string") return value as ErrorJson;
  }
  return { attempt: 0, at: 0, name: "Error", message: `the stored error record cannot be read: ${JSON.stringify(value)?.slice(0, 200) ?? String(value)}` };
}

export function errorInfoOf(e: ErrorJson): TaskErrorInfo {
  return { attempt: e.attempt, at: new Date(e.at), name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

/** `now`: the store's clock, ms (whether a canceled task's run may still run: `stopping`). */
export function taskInfoOf(row: DecodedTaskRow, errors: readonly ErrorJson[], now: number): TaskInfo {
  return {
    id: String(row.id),
    name: row.name,
    queue: row.queue,
    priority: row.priority,
    state: row.state,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    runAt: new Date(row.run_at),
    createdAt: new Date(row.created_at),
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
    workerId: row.worker_id,
    initiator: initiatorOf(row.user_id, row.user_context),
    withUserConnection: row.with_user_connection,
    progress: row.progress,
    progressMessage: row.progress_message,
    lastError: row.last_error ? errorInfoOf(readableError(row.last_error)) : null,
    errors: errors.map(errorInfoOf),
    timeoutMs: row.timeout_ms,
    ...(row.waiting_for !== undefined ? { waitingFor: row.waiting_for } : {}),
    ...(row.schedule_name !== undefined ? { scheduleName: row.schedule_name } : {}),
    ...(row.has_result !== undefined ? { hasResult: row.has_result } : {}),
    stopping: row.state === "canceled" && row.lease_expires_at !== undefined && row.lease_expires_at !== null && row.lease_expires_at >= now,
  };
}

/**
 * A claimed task's timeout as a timer can wait it: at most 2^31-1 ms. Starts never store more,
 * but a row changed by hand can (SQLite's columns take any integer), and Node fires a longer
 * timer at once: every attempt would time out as it began.
 */
export function claimedTimeoutMs(stored: number): number {
  return stored > 2_147_483_647 ? 2_147_483_647 : stored;
}

/** The fair-share key of a new task: its user (tasks started without one share the key ""). */
export function fairKeyOf(p: { readonly initiator: { readonly userId: string; readonly tenant?: string | null } | null }): string {
  return p.initiator ? `${p.initiator.tenant ?? ""}/${p.initiator.userId}` : "";
}
