/**
 * The storage seam. Every database the runtime can use implements StorageDriver; nothing outside
 * src/store/ knows SQL. Methods are named noun-then-verb and take one params object.
 * The database clock is the only clock: a driver computes "now" itself (run-at, leases).
 */
import { TASK_STATES, type Initiator, type TaskFilter, type TaskInfo, type TaskPage, type TaskState } from "../tasks/types.ts";
import type { ThrownInfo } from "../tasks/error-info.ts";
import type { MissedTickPolicy, ScheduleInfo } from "../tasks/schedules.ts";

/** See StorageDriver.storeState. */
export type StoreState = "none" | "behind" | "current";

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

/** How many waiting tasks taskInsertClaimed looks at, in claim order, for one that is due. */
export const HAND_OFF_LOOKAHEAD = 32;

/** Whether a task may be handed off as it is stored (taskInsertClaimed): due now, no deduplication key. */
export function handOffAllowed(params: TaskInsertParams): boolean {
  return (params.dedupKey ?? null) === null && params.runAtMs === undefined && params.delayMs === undefined;
}

/** taskInsertClaimed's check of its task (see handOffAllowed). */
export function checkHandOff(params: TaskInsertParams): void {
  if (!handOffAllowed(params)) {
    throw new Error("taskInsertClaimed takes a task due now: without runAtMs, delayMs or a dedupKey");
  }
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
  /**
   * At most one waiting or running task per key: when one exists, the insert returns its id and
   * stores nothing. Only for a single insert (taskInsert).
   */
  readonly dedupKey?: string | null;
  /** The key is released when the task starts (else when it ends). */
  readonly dedupUntilStart?: boolean;
  /** The W3C traceparent of the span that started the task; its attempts join that trace. */
  readonly traceContext?: string | null;
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
  /** When the task was due and when this claim took it (database clock, ms): pickup latency. */
  readonly runAtMs?: number;
  readonly claimedAtMs?: number;
  /** The W3C traceparent stored with the task, if any. */
  readonly traceContext?: string | null;
}

export interface RunRef {
  readonly id: string;
  readonly runSeq: number;
}

/**
 * A run a heartbeat renewed. `canceled`: its task was canceled meanwhile; the run should stop,
 * and its lease is still renewed until it has, so that the task cannot be queued again or deleted
 * while the attempt runs (see taskCanceledRunsEnded).
 */
export interface HeldRun extends RunRef {
  readonly canceled?: true;
}

/** How a run ended, as the worker reports it. */
export type RunOutcome =
  /** result: what run returned, MessagePack-encoded; absent when it returned nothing. */
  | { readonly kind: "succeeded"; readonly id: string; readonly runSeq: number; readonly result?: Uint8Array }
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
  /** Not these queues (those at their concurrency limit in this worker). */
  readonly excludeQueues?: readonly string[];
  /** Only tasks of these names. */
  readonly names?: readonly string[];
  /** Not tasks of these names (those claimed separately under a rate limit). */
  readonly excludeNames?: readonly string[];
  /**
   * With exactly one name: at most `limit` starts of that name per fixed window of `intervalMs`,
   * counted in the store across every worker. The claim takes what the window has left.
   */
  readonly rate?: { readonly limit: number; readonly intervalMs: number };
}

export interface TaskHeartbeatParams {
  readonly workerId: string;
  readonly leaseMs: number;
  readonly runs: readonly RunRef[];
}

export interface TaskRescueResult {
  readonly retried: number;
  readonly dead: number;
  /** The tasks that ended dead, for whoever follows ended tasks (process instances, event listeners). */
  readonly deadTasks?: readonly RescuedDeadTask[];
}

/** A task the rescue ended dead: its last attempt's worker stopped renewing the lease. */
export interface RescuedDeadTask {
  readonly id: string;
  readonly name: string;
  readonly attempt: number;
  readonly message: string;
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

/** What taskCompleteMany reports. */
export interface CompleteResult {
  readonly rejected: string[];
  /** A task that ended (succeeded, dead) has continuations: false lets the caller skip looking. */
  readonly continuations?: boolean;
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
  /**
   * Whether the store was created ("none": no migrations table) and whether migrate() has work to
   * do ("behind"), asked without creating or changing anything: commands that only read a store
   * refuse one that is not there or not current rather than create or upgrade it. Throws when the
   * store is newer than this underway.
   */
  storeState?(): Promise<StoreState>;
  /**
   * Readies the store for the first statements after a start, where it has something to ready
   * (PostgreSQL: opens the connections it keeps and loads each server process's catalogs for the
   * queue's statements). Best effort: a failure only leaves the first statements slower.
   */
  warm?(): Promise<void>;
  /** Answers when the store is reachable; throws otherwise. */
  ping(): Promise<void>;
  /** The database clock, ms since the epoch. */
  clockNow(): Promise<number>;
  /** Tests move the database clock instead of sleeping. */
  clockShift(ms: number): void;

  taskInsert(params: TaskInsertParams, tx?: DriverTransaction): Promise<string>;
  taskInsertMany(params: readonly TaskInsertParams[], tx?: DriverTransaction): Promise<string[]>;
  /**
   * Stores a task and hands it at once to the worker of `claim`, as a claim would, when no other
   * task is due: then `claimed` is the claimed task (attempt 1, leased to the worker), else null
   * and the task waits its turn as taskInsert leaves it. What a claim would take first decides:
   * a due task among the first HAND_OFF_LOOKAHEAD waiting ones in claim order, or that many
   * waiting, means no hand-off. For a start outside any transaction, without dedupKey or a run-at.
   * Optional: a runtime whose store lacks it inserts, and its worker claims.
   */
  taskInsertClaimed?(params: TaskInsertParams, claim: { readonly workerId: string; readonly leaseMs: number }): Promise<{ id: string; claimed: ClaimedTask | null }>;
  /**
   * Claims up to `limit` due tasks: highest priority first, then the lowest fair-share slot (each
   * user's tasks in the order they were started, interleaved with other users'), then id.
   */
  taskClaim(params: TaskClaimParams): Promise<ClaimedTask[]>;
  /**
   * Records outcomes; returns the ids whose run no longer held the task (fenced out), and
   * whether a task that ended has continuations waiting for it (absent: not known, look).
   */
  taskCompleteMany(outcomes: readonly RunOutcome[]): Promise<CompleteResult>;
  /**
   * Renews the leases of the given runs; returns those still held by this worker, their task
   * running or canceled while they ran (`canceled`).
   */
  taskHeartbeat(params: TaskHeartbeatParams): Promise<HeldRun[]>;
  /**
   * Lets go of the leases of runs that ended after their task was canceled: from now on the task
   * may be queued again or deleted. A run whose task is no longer canceled is left alone.
   */
  taskCanceledRunsEnded(runs: readonly RunRef[]): Promise<void>;
  taskProgressSet(params: RunRef & { readonly progress: number; readonly message: string | null }): Promise<void>;
  /** Running tasks whose lease expired: retried, or dead when their attempts are spent. */
  taskRescueExpired(params: { readonly limit: number }): Promise<TaskRescueResult>;
  /** The earliest run-at of tasks not yet due, to time the next wake-up. */
  taskNextRunAt(params: { readonly queues?: readonly string[] }): Promise<number | null>;
  taskGet(id: string): Promise<TaskInfo | null>;
  taskList(filter: TaskFilter): Promise<TaskPage>;
  taskCountByState(): Promise<Record<TaskState, number>>;
  /**
   * Cancels a task that has not ended: a queued or failed one never runs again; a running one's
   * worker aborts the run at its next heartbeat (at once in this process), and the task keeps
   * the run's lease until the run ended (it is `stopping`). Returns the state it had, or null when
   * there is no such task or it had already ended.
   */
  taskCancel(params: { readonly id: string }): Promise<TaskState | null>;
  /**
   * Queues a failed, dead or canceled task again at once, with one more attempt if it had none
   * left; not one canceled while it ran whose run has not ended yet (`stopping`).
   */
  taskRetry(params: { readonly id: string }): Promise<boolean>;
  /** Deletes a task that is neither running nor stopping, with its error history. */
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
   * On either store, lower() lowercases all of Unicode (SQLite's own maps ASCII only).
   */
  sqlQuery(sql: string, params: readonly unknown[], tx?: DriverTransaction): Promise<SqlResult>;

  /** Runs fn in one transaction: commit when it resolves, rollback when it throws. */
  transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T>;
  /** Called when another process may have stored new work. Returns an unsubscribe function. */
  onWake(listener: () => void): () => void;
  /**
   * Only on the store a task's thread borrows: settles once the worker's process sees the task
   * end (its worker ran it), or after `ms`, so that a wait for a task in a thread ends as promptly
   * as one in the process.
   */
  taskEndNotice?(id: string, ms: number): Promise<void>;
  close(): Promise<void>;

  // --- Read queries of the web application's task centre (issue #7). Each stays cheap on a table
  // of millions of tasks: index lookups and bounded scans, never a count of the whole table. ---

  /** The encoded parameters of a task, for the task page; null when there is no such task. */
  taskParametersGet(id: string): Promise<Uint8Array | null>;
  /**
   * Tasks per state, each state counted up to `cap` (a count equal to cap means "cap or more"), so
   * the work is bounded however large the table. Only the user's tasks when userId is given.
   */
  taskCountByStateUpTo(params: TaskCountUpToParams): Promise<Record<TaskState, number>>;
  /**
   * A short text that changes whenever a task is added, changes state, or a running task reports
   * progress. Change feeds poll it (one indexed read) and refresh their pages when it moves.
   */
  taskChangeMark(): Promise<string>;
  /**
   * Activity of the last `windowMs` (database clock) in buckets of `bucketMs`, oldest first: tasks
   * that succeeded and attempts that failed. Only the user's tasks when userId is given.
   */
  taskActivityBuckets(params: TaskActivityParams): Promise<TaskActivityBuckets>;

  // --- Scheduling, composition and observability (issue #9; docs/scheduling.md, docs/observability.md) ---

  /**
   * Inserts a continuation: a queued task held (run-at far in the future) until its predecessors
   * have ended, with its edges, in one transaction. Throws naming a predecessor that does not exist.
   */
  taskInsertContinuation(params: TaskInsertParams, after: ContinuationSpec, tx?: DriverTransaction): Promise<string>;
  /**
   * Consumes up to `limit` edges whose predecessor has ended (or was deleted): a continuation whose
   * last edge is consumed becomes due now; one whose success-only predecessor did not succeed is
   * canceled. Safe to run on several nodes at once: each edge is consumed once.
   */
  /** `consumed`: the edges this call took (at most `limit`); 0 when none was left to take. */
  taskContinuationsResolve(params: { readonly limit: number }): Promise<{ readonly released: number; readonly canceled: number; readonly consumed: number }>;
  /** The state and stored result (MessagePack) of a task; null when there is no such task. */
  taskResultGet(params: { readonly id: string }): Promise<{ readonly state: TaskState; readonly result: Uint8Array | null } | null>;
  /** Queues again, at once, up to `limit` ended tasks matching the filter (dead letters). Returns how many. */
  taskRetryMany(params: TaskRetryFilter): Promise<number>;
  /** Tasks waiting and running, per queue (reads the partial indexes only: cheap on large tables). */
  taskQueueDepth(): Promise<QueueDepth[]>;
  /** Counts per task name and state, and tasks ended per minute over the last `windowMs`. */
  taskStats(params: { readonly windowMs: number }): Promise<TaskStats>;

  /** Creates or updates a schedule. `nextRunAtMs` applies only to a new schedule or a changed cron or time zone; paused is kept. */
  scheduleUpsert(params: ScheduleUpsertParams): Promise<void>;
  scheduleList(): Promise<ScheduleInfo[]>;
  /** Schedules not paused whose next tick is at or before `atMs`. */
  scheduleListDue(params: { readonly atMs: number; readonly limit: number }): Promise<ScheduleInfo[]>;
  /**
   * Compare-and-set: moves the schedule's next tick from `expectedNextRunAtMs` to `nextRunAtMs`
   * (null: never again) and, when `fireTickMs` is given, inserts its task for that tick, in one
   * transaction. `advanced` is false when another node moved it first, or it is paused or gone.
   */
  scheduleAdvance(params: ScheduleAdvanceParams): Promise<{ readonly advanced: boolean; readonly taskId: string | null }>;
  /** Pauses or resumes; resuming sets the next tick. False when there is no such schedule. */
  scheduleSetPaused(params: { readonly name: string; readonly paused: boolean; readonly nextRunAtMs?: number | null }): Promise<boolean>;
  scheduleDelete(params: { readonly name: string }): Promise<boolean>;
}

/** A continuation's predecessors. */
export interface ContinuationSpec {
  readonly taskIds: readonly string[];
  /** True: run only if every predecessor succeeded, else the continuation is canceled. False: once all have ended. */
  readonly onlyOnSuccess: boolean;
}

/** Run-at of a continuation that still waits, and next tick of a schedule that never fires again: 9999-12-31T23:59:59Z. */
export const HELD_RUN_AT_MS = 253_402_300_799_000;

export interface TaskRetryFilter {
  /** Among failed, dead and canceled; default dead. */
  readonly states?: readonly TaskState[];
  readonly name?: string;
  readonly queue?: string;
  readonly ids?: readonly string[];
  readonly limit: number;
}

export interface QueueDepth {
  readonly queue: string;
  /** Queued or failed, and due now. */
  readonly due: number;
  /** Queued or failed, due later (delayed, backing off, or a continuation that waits). */
  readonly later: number;
  readonly running: number;
}

export interface TaskStats {
  readonly counts: readonly { readonly name: string; readonly state: TaskState; readonly count: number }[];
  /** Tasks that ended per minute (start of the minute, ms) and final state, oldest first. */
  readonly ended: readonly { readonly minute: number; readonly state: TaskState; readonly count: number }[];
  /** The database clock when read. */
  readonly now: number;
}

export interface ScheduleUpsertParams {
  readonly name: string;
  readonly cron: string;
  readonly timeZone: string;
  readonly taskName: string;
  readonly parameters: Uint8Array;
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly missed: MissedTickPolicy;
  readonly nextRunAtMs: number | null;
}

export interface ScheduleAdvanceParams {
  readonly name: string;
  readonly expectedNextRunAtMs: number;
  readonly nextRunAtMs: number | null;
  /** The tick the inserted task stands for; null to skip without a task. */
  readonly fireTickMs: number | null;
}

export interface TaskCountUpToParams {
  readonly cap: number;
  readonly userId?: string;
}

export interface TaskActivityParams {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly userId?: string;
}

export interface TaskActivityBuckets {
  /** Start of the first bucket, ms since the epoch. */
  readonly fromMs: number;
  readonly bucketMs: number;
  /** Per bucket: tasks that succeeded in it. */
  readonly succeeded: number[];
  /** Per bucket: failed attempts (retried or dead) in it. */
  readonly failed: number[];
}

/** The largest task id a store can hold: ids are 64-bit signed integers. */
export const MAX_TASK_ID = 2n ** 63n - 1n;

/** A task id as the stores keep it: a positive 64-bit integer in decimal. Null for anything else. */
export function parseTaskId(id: string): bigint | null {
  if (!/^[1-9][0-9]{0,18}$/.test(id)) return null;
  const key = BigInt(id);
  return key <= MAX_TASK_ID ? key : null;
}

/** A task list's filter, checked, as every driver applies it. */
export interface CheckedTaskFilter {
  /** Empty: every state. */
  readonly states: readonly TaskState[];
  readonly name: string | undefined;
  readonly queue: string | undefined;
  readonly userId: string | undefined;
  /** 1 to 1,000. */
  readonly limit: number;
  /** Tasks with a lower id, when set; the id as given (decimal). */
  readonly beforeId: string | undefined;
}

/**
 * Checks a task list's filter: a TypeError or RangeError that names the field for anything it
 * cannot mean (a state list that is not an array, an unknown state, a limit that is not a
 * number, a text field that is not text, a beforeId that is not a task id). A limit outside
 * 1 to 1,000 is brought within it, as documented.
 */
export function checkTaskFilter(filter: TaskFilter | null | undefined): CheckedTaskFilter {
  if (filter === undefined || filter === null) filter = {};
  if (typeof filter !== "object" || Array.isArray(filter)) throw new TypeError(`the task filter must be an object, got ${describeValue(filter)}`);
  const { states = [], name, queue, userId, limit = 50, beforeId } = filter;
  if (!Array.isArray(states)) throw new TypeError(`filter.states must be an array of task states (${TASK_STATES.join(", ")}), got ${describeValue(states)}`);
  states.forEach((state: unknown, i) => {
    if (!TASK_STATES.includes(state as TaskState)) {
      throw new RangeError(`filter.states[${i}]: unknown task state ${describeValue(state)}; expected one of ${TASK_STATES.join(", ")}`);
    }
  });
  for (const [field, value] of [["name", name], ["queue", queue], ["userId", userId]] as const) {
    if (value !== undefined && typeof value !== "string") throw new TypeError(`filter.${field} must be a string, got ${describeValue(value)}`);
  }
  if (typeof limit !== "number" || Number.isNaN(limit)) throw new TypeError(`filter.limit must be a number (1 to 1,000), got ${describeValue(limit)}`);
  if (beforeId !== undefined && (typeof beforeId !== "string" || parseTaskId(beforeId) === null)) {
    throw new RangeError(`filter.beforeId must be a task id, got ${describeValue(beforeId)}`);
  }
  return { states, name, queue, userId, limit: Math.min(Math.max(1, Math.trunc(limit)), 1000), beforeId };
}

const RETRYABLE_STATES: readonly TaskState[] = ["failed", "dead", "canceled"];

/** The most task ids one retry filter may list. */
export const MAX_RETRY_IDS = 10_000;

/**
 * Checks a retry filter (`requeueTasks`) as checkTaskFilter checks a list's: the states among
 * failed, dead and canceled (default dead), text fields as text, ids as an array of strings (at
 * most MAX_RETRY_IDS; those that are no task id match nothing), a limit of at least 0.
 */
export function checkRetryFilter(filter: TaskRetryFilter): TaskRetryFilter & { readonly states: readonly TaskState[] } {
  if (filter === null || typeof filter !== "object" || Array.isArray(filter)) throw new TypeError(`the retry filter must be an object, got ${describeValue(filter)}`);
  const { states = [], name, queue, ids, limit } = filter;
  if (!Array.isArray(states)) throw new TypeError(`filter.states must be an array of states (${RETRYABLE_STATES.join(", ")}), got ${describeValue(states)}`);
  states.forEach((state: unknown, i) => {
    if (!RETRYABLE_STATES.includes(state as TaskState)) {
      throw new RangeError(`filter.states[${i}]: only ${RETRYABLE_STATES.join(", ")} tasks can be queued again, not ${describeValue(state)}`);
    }
  });
  for (const [field, value] of [["name", name], ["queue", queue]] as const) {
    if (value !== undefined && typeof value !== "string") throw new TypeError(`filter.${field} must be a string, got ${describeValue(value)}`);
  }
  if (ids !== undefined) {
    if (!Array.isArray(ids)) throw new TypeError(`filter.ids must be an array of task ids, got ${describeValue(ids)}`);
    if (ids.length > MAX_RETRY_IDS) throw new RangeError(`filter.ids lists ${ids.length} ids; at most ${MAX_RETRY_IDS} at a time`);
    ids.forEach((id: unknown, i) => {
      if (typeof id !== "string") throw new TypeError(`filter.ids[${i}] must be a string, got ${describeValue(id)}`);
    });
  }
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`filter.limit must be an integer >= 0, got ${describeValue(limit)}`);
  return { ...filter, states: states.length ? states : ["dead"] };
}

/** A value as an error message shows it. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `a ${typeof value}`;
}
