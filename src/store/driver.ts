/**
 * The storage seam. Every database the runtime can use implements StorageDriver; nothing outside
 * src/store/ knows SQL. Methods are named noun-then-verb and take one params object.
 * The database clock is the only clock: a driver computes "now" itself (run-at, leases).
 */
import type { Initiator, TaskFilter, TaskInfo, TaskPage, TaskState } from "../tasks/types.ts";
import type { ThrownInfo } from "../tasks/error-info.ts";

/** What differs between backends, in one place. */
export interface DriverCapabilities {
  /** Several processes may claim at once without blocking each other (FOR UPDATE SKIP LOCKED). */
  readonly skipLocked: boolean;
  /** The database pushes "new work" notifications to other processes. */
  readonly notifications: "listen-notify" | "file-watch" | "none";
  /** Resolution of stored timestamps, in ms. */
  readonly timePrecisionMs: number;
  /** Several processes on several machines may share the store. */
  readonly multiHost: boolean;
}

export interface TaskInsertParams {
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly parameters: Uint8Array;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  /** Absolute run-at (ms since epoch); wins over delayMs. */
  readonly runAtMs?: number;
  /** Run this many ms after the database's now. */
  readonly delayMs?: number;
  readonly initiator: Initiator | null;
  readonly withUserConnection: boolean;
  /** The runtime's signature over the initiator, name and parameters (tamper protection). */
  readonly initiatorSignature?: string | null;
}

/** A task handed to a worker by taskClaim. `runSeq` fences every later write of that run. */
export interface ClaimedTask {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly parameters: Uint8Array;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly runSeq: number;
  readonly timeoutMs: number;
  readonly withUserConnection: boolean;
  readonly initiator: Initiator | null;
  readonly initiatorSignature: string | null;
}

export interface RunRef {
  readonly id: string;
  readonly runSeq: number;
}

/** How a run ended, as the worker reports it. */
export type RunOutcome =
  | { readonly kind: "succeeded"; readonly id: string; readonly runSeq: number }
  /** retryDelayMs null: no retry, the task is dead. */
  | {
      readonly kind: "failed";
      readonly id: string;
      readonly runSeq: number;
      readonly attempt: number;
      readonly error: ThrownInfo;
      readonly retryDelayMs: number | null;
    }
  /** Interrupted by shutdown: queued again without spending the attempt. */
  | { readonly kind: "released"; readonly id: string; readonly runSeq: number };

export interface TaskClaimParams {
  readonly workerId: string;
  readonly limit: number;
  readonly leaseMs: number;
  /** Only these queues; all queues when absent. */
  readonly queues?: readonly string[];
}

export interface TaskHeartbeatParams {
  readonly workerId: string;
  readonly leaseMs: number;
  readonly runs: readonly RunRef[];
}

export interface TaskRescueResult {
  readonly retried: number;
  readonly dead: number;
}

/** What a statement of the platform's query builder returns. */
export interface SqlResult {
  readonly rows: Record<string, unknown>[];
  /** Rows inserted, updated or deleted by a writing statement. */
  readonly affectedRows: number;
}

/** A caller's open transaction, lent to the runtime so an enqueue joins it. */
export interface DriverTransaction {
  readonly driver: StorageDriver;
  /** Runs one statement inside the transaction; `?` placeholders for SQLite, `$1` for PostgreSQL. */
  execute(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
}

export interface StorageDriver {
  readonly dialect: "sqlite" | "postgres";
  readonly capabilities: DriverCapabilities;
  /** The PostgreSQL schema holding the store's tables (and the platform's); null for SQLite. */
  readonly schema: string | null;
  /** A description for logs and errors; never contains a password. */
  readonly description: string;

  /** Applies the pending numbered migrations; safe when several processes start at once. */
  migrate(): Promise<void>;
  /** Answers when the store is reachable; throws otherwise. */
  ping(): Promise<void>;
  /** The database clock, ms since the epoch. */
  clockNow(): Promise<number>;
  /** Tests move the database clock instead of sleeping. */
  clockShift(ms: number): void;

  taskInsert(params: TaskInsertParams, tx?: DriverTransaction): Promise<string>;
  taskInsertMany(params: readonly TaskInsertParams[], tx?: DriverTransaction): Promise<string[]>;
  /** Claims up to `limit` due tasks: highest priority first, then earliest run-at, then id. */
  taskClaim(params: TaskClaimParams): Promise<ClaimedTask[]>;
  /** Records outcomes; returns the ids whose run no longer held the task (fenced out). */
  taskCompleteMany(outcomes: readonly RunOutcome[]): Promise<{ readonly rejected: string[] }>;
  /** Renews the leases of the given runs; returns those still held by this worker. */
  taskHeartbeat(params: TaskHeartbeatParams): Promise<RunRef[]>;
  taskProgressSet(params: RunRef & { readonly progress: number; readonly message: string | null }): Promise<void>;
  /** Running tasks whose lease expired: retried, or dead when their attempts are spent. */
  taskRescueExpired(params: { readonly limit: number }): Promise<TaskRescueResult>;
  /** The earliest run-at of tasks not yet due, to time the next wake-up. */
  taskNextRunAt(params: { readonly queues?: readonly string[] }): Promise<number | null>;
  taskGet(id: string): Promise<TaskInfo | null>;
  taskList(filter: TaskFilter): Promise<TaskPage>;
  taskCountByState(): Promise<Record<TaskState, number>>;
  /**
   * Cancels a task that has not ended: a queued or failed one never runs again; a running one is
   * no longer held by its worker, whose next heartbeat aborts the run. Returns the state it had,
   * or null when there is no such task or it had already ended.
   */
  taskCancel(params: { readonly id: string }): Promise<TaskState | null>;
  /** Queues a failed, dead or canceled task again at once, with one more attempt if it had none left. */
  taskRetry(params: { readonly id: string }): Promise<boolean>;
  /** Deletes a task that is not running, with its error history. */
  taskDelete(params: { readonly id: string }): Promise<boolean>;
  /**
   * Retention: deletes up to `limit` tasks that ended long enough ago: succeeded ones after
   * `succeededAgeMs`, dead and canceled ones after `failedAgeMs`. Returns how many.
   */
  taskDeleteFinished(params: { readonly succeededAgeMs: number; readonly failedAgeMs: number; readonly limit: number }): Promise<number>;

  /**
   * Takes or renews the named leadership for holderId until the database's now + ttlMs. True when
   * holderId is the leader afterwards; false while another holder's term has not expired.
   */
  leaderAttemptElect(params: { readonly name: string; readonly holderId: string; readonly ttlMs: number }): Promise<boolean>;
  /** Gives up the named leadership if holderId has it, so another node can take over at once. */
  leaderResign(params: { readonly name: string; readonly holderId: string }): Promise<void>;

  /**
   * Runs one statement of the platform's query builder (Kysely) on the store's connection: in the
   * transaction given, else in the one open in this async context, else alone. Placeholders are
   * the dialect's (`?` SQLite, `$1` PostgreSQL). The queue's own SQL never goes through here.
   */
  sqlQuery(sql: string, params: readonly unknown[], tx?: DriverTransaction): Promise<SqlResult>;

  /** Runs fn in one transaction: commit when it resolves, rollback when it throws. */
  transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T>;
  /** Called when another process may have stored new work. Returns an unsubscribe function. */
  onWake(listener: () => void): () => void;
  close(): Promise<void>;
}

/** A task id as the stores keep it: a positive integer in decimal. */
export function parseTaskId(id: string): bigint | null {
  return /^[1-9][0-9]{0,18}$/.test(id) ? BigInt(id) : null;
}
