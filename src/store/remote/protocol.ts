/**
 * The messages of a store lent to another thread: an isolated task's thread calls the driver of
 * the worker's process through a MessagePort, so the task's entity reads and writes, and the
 * tasks it starts, run on the process's one connection (pool) and in its transactions.
 */

import type { StorageDriver } from "../driver.ts";

/** What the lending side tells the borrowing thread about the store up front. */
export interface RemoteStoreInfo {
  readonly dialect: "sqlite" | "postgres";
  readonly capabilities: {
    readonly skipLocked: boolean;
    readonly notifications: "listen-notify" | "file-watch" | "none";
    readonly timePrecisionMs: number;
    readonly multiHost: boolean;
  };
  readonly schema: string | null;
  readonly description: string;
}

export type RemoteRequest =
  /** A driver method; `txId` when the caller is inside one of its transactions. */
  | { readonly id: number; readonly op: "call"; readonly method: string; readonly args: readonly unknown[]; readonly txId?: number }
  | { readonly id: number; readonly op: "begin" }
  | { readonly id: number; readonly op: "commit"; readonly txId: number }
  | { readonly id: number; readonly op: "rollback"; readonly txId: number }
  /** Answers once the lending process sees the task end (its worker ran it), or after `ms`. */
  | { readonly id: number; readonly op: "awaitEnd"; readonly taskId: string; readonly ms: number };

/** The longest wait of one awaitEnd request, ms: a waiting task polls again after it. */
export const MAX_AWAIT_END_MS = 60_000;

/** A thrown error, as it crosses threads. */
export interface RemoteError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
  /** The error's other own fields of plain values (PostgreSQL's constraint, detail, table, ...). */
  readonly fields?: Readonly<Record<string, string | number | boolean>>;
  readonly cause?: RemoteError;
}

/** Of an error's own fields, at most this many cross, strings cut at MAX_FIELD_CHARS, causes MAX_CAUSES deep. */
const MAX_FIELDS = 32;
const MAX_FIELD_CHARS = 4_000;
const MAX_CAUSES = 3;
const CARRIED_APART = new Set(["name", "message", "stack", "code", "cause"]);

export type RemoteReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: RemoteError };

type DriverMethod = { [K in keyof StorageDriver]-?: NonNullable<StorageDriver[K]> extends (...args: never[]) => unknown ? K : never }[keyof StorageDriver];

/**
 * Who may call each driver method: a task's thread ("tasks"), or only the worker's process
 * ("lender": the worker's and the maintenance's own). Every method of the driver is listed here,
 * the compiler sees to it, so a new one is placed when it is added; a name not listed is refused.
 */
const METHOD_ACCESS: Readonly<Record<DriverMethod, "tasks" | "lender">> = {
  clockNow: "tasks",
  ping: "tasks",
  sqlQuery: "tasks",
  taskInsert: "tasks",
  taskInsertMany: "tasks",
  taskInsertContinuation: "tasks",
  taskGet: "tasks",
  taskList: "tasks",
  taskParametersGet: "tasks",
  taskResultGet: "tasks",
  taskCancel: "tasks",
  taskRetry: "tasks",
  taskRetryMany: "tasks",
  taskDelete: "tasks",
  taskProgressSet: "tasks",
  taskCountByState: "tasks",
  taskCountByStateUpTo: "tasks",
  taskQueueDepth: "tasks",
  taskStats: "tasks",
  taskActivityBuckets: "tasks",
  taskChangeMark: "tasks",
  taskNextRunAt: "tasks",
  taskContinuationsResolve: "tasks",
  scheduleUpsert: "tasks",
  scheduleDelete: "tasks",
  scheduleList: "tasks",
  scheduleListDue: "tasks",
  scheduleSetPaused: "tasks",
  scheduleAdvance: "tasks",
  migrate: "lender",
  storeState: "lender",
  warm: "lender",
  close: "lender",
  onWake: "lender",
  // The borrowed store's own (an awaitEnd request), never a call of the driver.
  taskEndNotice: "lender",
  clockShift: "lender",
  transaction: "lender",
  taskClaim: "lender",
  taskInsertClaimed: "lender",
  taskCompleteMany: "lender",
  taskHeartbeat: "lender",
  taskCanceledRunsEnded: "lender",
  taskRescueExpired: "lender",
  taskDeleteFinished: "lender",
  leaderAttemptElect: "lender",
  leaderResign: "lender",
};

/** The driver methods a task's thread may call, and no other name. */
export const TASK_METHODS: ReadonlySet<string> = new Set(Object.entries(METHOD_ACCESS).flatMap(([method, who]) => (who === "tasks" ? [method] : [])));

/** More arguments than any driver method takes (the transaction, where one is, is not sent). */
export const MAX_ARGUMENTS = 8;

/** Driver methods that take a transaction, and where. */
export const TRANSACTION_ARGUMENT: Readonly<Record<string, number>> = {
  taskInsert: 1,
  taskInsertMany: 1,
  sqlQuery: 2,
  taskInsertContinuation: 2,
};

/**
 * What of an error crosses to the thread: its name, message, stack and code, its other own fields
 * of plain values, and its cause, so that a task reads a store's error in a thread as it would in
 * the worker's process (its class stays behind: a thread has not loaded the store's modules).
 */
export function toRemoteError(error: unknown, depth = 0): RemoteError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const code = (error as { code?: unknown }).code;
  const fields: Record<string, string | number | boolean> = {};
  let count = 0;
  for (const key of Object.keys(error)) {
    if (CARRIED_APART.has(key) || count >= MAX_FIELDS) continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === "string") fields[key] = value.slice(0, MAX_FIELD_CHARS);
    else if (typeof value === "number" || typeof value === "boolean") fields[key] = value;
    else continue;
    count++;
  }
  const cause = depth < MAX_CAUSES && error.cause !== undefined ? toRemoteError(error.cause, depth + 1) : undefined;
  return {
    name: error.name,
    message: error.message,
    ...(error.stack ? { stack: error.stack } : {}),
    ...(typeof code === "string" ? { code } : {}),
    ...(count > 0 ? { fields } : {}),
    ...(cause ? { cause } : {}),
  };
}

/** The error a thread's call rejects with; `calledFrom` is the call's own stack in the thread, added to the store's. */
export function fromRemoteError(remote: RemoteError, calledFrom?: string): Error {
  const error = new Error(remote.message, remote.cause ? { cause: fromRemoteError(remote.cause) } : undefined);
  for (const [key, value] of Object.entries(remote.fields ?? {})) {
    // Own data fields only, never what Error's prototype or Object's would answer to.
    if (!(key in error)) Object.defineProperty(error, key, { value, enumerable: true, writable: true, configurable: true });
  }
  error.name = remote.name;
  if (remote.stack) error.stack = remote.stack;
  if (remote.code) (error as Error & { code?: string }).code = remote.code;
  if (calledFrom) error.stack = `${error.stack ?? `${remote.name}: ${remote.message}`}\n    --- called from the task's thread ---${calledFrom}`;
  return error;
}
