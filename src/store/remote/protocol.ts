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
  | { readonly id: number; readonly op: "rollback"; readonly txId: number };

/** A thrown error, as it crosses threads. */
export interface RemoteError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
}

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
  storeExists: "lender",
  warm: "lender",
  close: "lender",
  onWake: "lender",
  clockShift: "lender",
  transaction: "lender",
  taskClaim: "lender",
  taskInsertClaimed: "lender",
  taskCompleteMany: "lender",
  taskHeartbeat: "lender",
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

export function toRemoteError(error: unknown): RemoteError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(error.stack ? { stack: error.stack } : {}),
      ...(typeof code === "string" ? { code } : {}),
    };
  }
  return { name: "Error", message: String(error) };
}

export function fromRemoteError(remote: RemoteError): Error {
  const error = new Error(remote.message);
  error.name = remote.name;
  if (remote.stack) error.stack = remote.stack;
  if (remote.code) (error as Error & { code?: string }).code = remote.code;
  return error;
}
