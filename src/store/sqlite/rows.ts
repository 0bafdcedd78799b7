import { initiatorOf, type InitiatorContext } from "../initiator.ts";
import type { Initiator, TaskErrorInfo, TaskInfo, TaskState } from "../../tasks/types.ts";

/** A row of underway_tasks as better-sqlite3 returns it. */
export interface TaskRow {
  id: number | bigint;
  name: string;
  queue: string;
  priority: number;
  state: TaskState;
  parameters: Uint8Array;
  run_at: number;
  attempt: number;
  max_attempts: number;
  run_seq: number;
  timeout_ms: number;
  worker_id: string | null;
  lease_expires_at: number | null;
  with_user_connection: number;
  user_id: string | null;
  user_context: string | null;
  progress: number | null;
  progress_message: string | null;
  last_error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface ErrorRow {
  attempt: number;
  at: number;
  name: string;
  message: string;
  stack: string | null;
}

/** The initiator of a row; the context column holds JSON text here. */
export function initiatorFromRow(userId: string | null, context: string | null): Initiator | null {
  return initiatorOf(userId, context ? (JSON.parse(context) as InitiatorContext) : null);
}

function lastErrorOf(text: string | null): TaskErrorInfo | null {
  if (!text) return null;
  const e = JSON.parse(text) as { attempt: number; at: number; name: string; message: string; stack?: string };
  return { attempt: e.attempt, at: new Date(e.at), name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function taskInfoOf(row: TaskRow, errors: readonly ErrorRow[]): TaskInfo {
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
    initiator: initiatorFromRow(row.user_id, row.user_context),
    withUserConnection: row.with_user_connection === 1,
    progress: row.progress,
    progressMessage: row.progress_message,
    lastError: lastErrorOf(row.last_error),
    errors: errors.map((e) => ({
      attempt: e.attempt,
      at: new Date(e.at),
      name: e.name,
      message: e.message,
      ...(e.stack ? { stack: e.stack } : {}),
    })),
    timeoutMs: row.timeout_ms,
  };
}
