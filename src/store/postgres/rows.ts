/** Rows as the queries in queries.ts return them through pg, and their mapping to the driver's types. */
import type { ClaimedTask } from "../driver.ts";
import { initiatorOf, type InitiatorContext } from "../initiator.ts";
import type { TaskState } from "../../tasks/types.ts";
import { claimedTimeoutMs, type ErrorJson } from "../task-rows.ts";

export type { ErrorJson };

export interface TaskRow {
  id: string;
  name: string;
  queue: string;
  priority: number;
  state: TaskState;
  run_at: number;
  attempt: number;
  max_attempts: number;
  run_seq: number;
  timeout_ms: number;
  worker_id: string | null;
  lease_expires_at: number | null;
  with_user_connection: boolean;
  user_id: string | null;
  user_context: InitiatorContext | null;
  progress: number | null;
  progress_message: string | null;
  last_error: ErrorJson | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  waiting_for?: number;
  schedule_name?: string | null;
  has_result?: boolean;
  /** Only from `get`. */
  errors?: ErrorJson[];
}

export interface ClaimRow {
  id: string;
  name: string;
  queue: string;
  priority: number;
  parameters: Uint8Array;
  attempt: number;
  max_attempts: number;
  run_seq: number;
  timeout_ms: number;
  with_user_connection: boolean;
  user_id: string | null;
  user_context: InitiatorContext | null;
  run_at: number;
  initiator_sig: string | null;
  started_at: number;
  trace_context: string | null;
  /** bigint, as text. */
  fair_slot: string;
}

export function claimedOf(row: ClaimRow): ClaimedTask {
  return {
    id: row.id,
    name: row.name,
    queue: row.queue,
    priority: row.priority,
    parameters: row.parameters,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    runSeq: row.run_seq,
    timeoutMs: claimedTimeoutMs(row.timeout_ms),
    withUserConnection: row.with_user_connection,
    initiator: initiatorOf(row.user_id, row.user_context),
    initiatorSignature: row.initiator_sig,
    runAtMs: row.run_at,
    claimedAtMs: row.started_at,
    traceContext: row.trace_context,
  };
}

/** Claim order: highest priority, then the lowest fair-share slot, then lowest id. */
export function byClaimOrder(a: ClaimRow, b: ClaimRow): number {
  return b.priority - a.priority || compareIds(a.fair_slot, b.fair_slot) || compareIds(a.id, b.id);
}

/** Compares decimal ids numerically. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
