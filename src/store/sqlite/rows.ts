import { initiatorOf, type InitiatorContext } from "../initiator.ts";
import type { DecodedTaskRow, ErrorJson } from "../task-rows.ts";
import type { Initiator, TaskState } from "../../tasks/types.ts";

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
  waiting_for?: number;
  schedule_name?: string | null;
  has_result?: number;
}

export interface ErrorRow {
  attempt: number;
  at: number;
  name: string;
  message: string;
  stack: string | null;
}

/**
 * A JSON column's object, or null when the column is empty or holds anything else: a row edited
 * by hand, or damaged, must not stop a claim of many tasks or a page of the task list. A user
 * context that does not read leaves the initiator without one (a task with a user connection
 * then fails its signature check, as any altered row does).
 */
function jsonObject(text: string | null): Record<string, unknown> | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A stored error record, or one that says it could not be read. */
function errorRecord(text: string | null): ErrorJson | null {
  if (!text) return null;
  const record = jsonObject(text);
  if (record && typeof record["name"] === "string" && typeof record["message"] === "string") return record as unknown as ErrorJson;
  return { attempt: 0, at: 0, name: "Error", message: `the stored error record cannot be read: ${JSON.stringify(text.slice(0, 200))}` };
}

/** The initiator of a row; the context column holds JSON text here. */
export function initiatorFromRow(userId: string | null, context: string | null): Initiator | null {
  return initiatorOf(userId, jsonObject(context) as InitiatorContext | null);
}

/** The row decoded: JSON columns parsed, the flag as a boolean. */
export function decodedRow(row: TaskRow): DecodedTaskRow {
  const { has_result: hasResult, ...rest } = row;
  return {
    ...rest,
    with_user_connection: row.with_user_connection === 1,
    ...(hasResult !== undefined ? { has_result: hasResult === 1 } : {}),
    user_context: jsonObject(row.user_context) as InitiatorContext | null,
    last_error: errorRecord(row.last_error),
  };
}
