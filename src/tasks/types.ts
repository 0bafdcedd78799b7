/**
 * Terminology
 * - task: one background operation, stored durably: a task class name plus encoded parameters.
 * - task class: a class implementing IBackgroundTask<TParameters>; the runtime creates its
 *   instances itself with the parameterless constructor.
 * - attempt: one run of a task. A task is retried until it succeeds or its attempts are spent.
 * - initiator: the user who started a task with a user connection; the task runs as that user.
 * - lease: a running task's claim, renewed by its worker's heartbeats; an expired lease means the
 *   worker died and the task is run again (at-least-once).
 */
import type { Logger } from "./logger.ts";

/** The states of a task. See docs/task-states.md for the state machine. */
export type TaskState = "queued" | "running" | "succeeded" | "failed" | "dead" | "canceled";

export const TASK_STATES: readonly TaskState[] = ["queued", "running", "succeeded", "failed", "dead", "canceled"];

/** Terminal states: a task in one of them never runs again by itself. */
export const TERMINAL_STATES: readonly TaskState[] = ["succeeded", "dead", "canceled"];

/** What a task sees of its own run, besides its parameters. Our addition to the platform's API. */
export interface TaskContext {
  /** Aborts on timeout, cancellation, lost lease or shutdown. Long work should watch it. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly taskId: string;
  readonly taskName: string;
  /** A logger whose lines carry the task id, name, attempt and user. */
  readonly logger: Logger;
  /** Reports progress between 0 and 1; stored (throttled) and shown by `underway wait`. */
  reportProgress(fraction: number, message?: string): void;
}

/**
 * The platform's IBackgroundTask<in TParameters>: one method, run. Our addition: run may return a
 * small serializable result (TResult), stored with the task and read with handle.result().
 */
export interface IBackgroundTask<TParameters, TResult = void> {
  run(parameters: TParameters, context: TaskContext): TResult | Promise<TResult>;
}

/**
 * The smallest view of a user connection the runtime itself relies on. The platform's
 * UserConnection provides it and much more.
 */
export interface UserConnectionLike {
  readonly currentUser: { readonly id: string };
}

/** The platform's IUserConnectionRequired: setUserConnection is called before run. */
export interface IUserConnectionRequired<TConnection extends UserConnectionLike = UserConnectionLike> {
  setUserConnection(userConnection: TConnection): void;
}

/** Who started a task: stored in the task's own columns, never in its parameters. */
export interface Initiator {
  readonly userId: string;
  readonly culture?: string;
  readonly timeZone?: string;
  readonly tenant?: string;
}

/** Backoff between attempts: delay = min(maxMs, baseMs * 2^(attempt-1)), then jittered. */
export interface BackoffOptions {
  /** Delay after the first failed attempt. Default 1,000 ms. */
  readonly baseMs?: number;
  /** Upper bound of a delay. Default 3,600,000 ms (one hour). */
  readonly maxMs?: number;
  /** Fraction of the delay that is randomised (0 = none, 1 = full jitter). Default 0.5. */
  readonly jitter?: number;
}

/** Per-task-class options, given as `static taskOptions` on the class. */
export interface TaskClassOptions {
  /** Attempts before the task is dead. Default 5. */
  readonly maxAttempts?: number;
  /** Wall-clock limit of one attempt, in ms. Default 300,000 (five minutes); 0 = none. */
  readonly timeoutMs?: number;
  readonly backoff?: BackoffOptions;
  /** Queue name. Default "default". */
  readonly queue?: string;
  /** Higher runs first among due tasks. Default 0. */
  readonly priority?: number;
  /**
   * Where an attempt runs. "thread" (the default, unless the runtime's isolation says otherwise):
   * in a worker thread of its own, stopped at its limits without touching other tasks. "none": on
   * the worker's event loop; cheaper, for trusted code only (a synchronous loop there blocks every
   * task of the process). See docs/isolation.md.
   */
  readonly isolation?: "thread" | "none";
  /** Heap limit of the thread an attempt runs in, in MB. Default: the runtime's (256). */
  readonly memoryLimitMb?: number;
  /**
   * At most `tasks` starts of this class per `intervalMs` (fixed windows of the database clock),
   * counted across every worker. Tasks over the limit wait, queued. Default: no limit.
   */
  readonly rateLimit?: { readonly tasks: number; readonly intervalMs: number };
}

/**
 * The module that exports a task class, for worker threads to load it from: set
 * `static readonly taskModule = import.meta.url` on the class, or list the module in the
 * runtime's `tasks`. Classes of published packages need neither.
 */
export type TaskModuleUrl = string;

/** A class that can be started as a task. */
export interface TaskClass<TParameters = unknown> {
  new (): IBackgroundTask<TParameters>;
  /** A stable name for the class (default: the class name). Workers resolve classes by it. */
  readonly taskName?: string;
  readonly taskOptions?: TaskClassOptions;
  /** The module that exports the class (`import.meta.url`), so isolated threads can load it. */
  readonly taskModule?: TaskModuleUrl;
}

/** Options of one start. */
export interface StartOptions {
  /** Overrides the class's queue. */
  readonly queue?: string;
  readonly priority?: number;
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  /** Run no earlier than this time. */
  readonly runAt?: Date;
  /** Run no earlier than this many ms from now (database clock). */
  readonly delayMs?: number;
  /** The same as delayMs (ms from now, database clock); give one of them, not both. */
  readonly delay?: number;
  /**
   * Deduplication: while a task started with this key is held (see dedupUntil), a start with the
   * same key stores nothing and returns that task. For one start, not startNewMany.
   */
  readonly dedupKey?: string;
  /**
   * How long the key is held: "ended" (default) while the task is queued, waiting for a retry or
   * running; "started" only until it starts running (a start after that makes a new task).
   */
  readonly dedupUntil?: "ended" | "started";
}

/** A stored task, as inspection returns it. */
export interface TaskInfo {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly state: TaskState;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly runAt: Date;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly workerId: string | null;
  readonly initiator: Initiator | null;
  readonly withUserConnection: boolean;
  readonly progress: number | null;
  readonly progressMessage: string | null;
  readonly lastError: TaskErrorInfo | null;
  readonly errors: readonly TaskErrorInfo[];
  readonly timeoutMs: number;
  /** Predecessors of a continuation that have not ended, also once it was canceled (0 for other tasks). */
  readonly waitingFor?: number;
  /** The schedule that started the task, if a cron tick did. */
  readonly scheduleName?: string | null;
  /** Whether a succeeded run stored a result. */
  readonly hasResult?: boolean;
  /**
   * Canceled while it ran, and that run has not ended yet (its code ignores the signal, or its
   * worker has not seen the cancel): it cannot be retried or deleted until it has, or until its
   * lease runs out when its worker is gone.
   */
  readonly stopping?: boolean;
}

export interface TaskErrorInfo {
  readonly attempt: number;
  readonly at: Date;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export interface TaskFilter {
  readonly states?: readonly TaskState[];
  readonly name?: string;
  readonly queue?: string;
  readonly userId?: string;
  /** Page size, default 50, at most 1,000. */
  readonly limit?: number;
  /** Keyset paging: tasks with an id lower than this (lists are newest first). */
  readonly beforeId?: string;
}

export interface TaskPage {
  readonly items: readonly TaskInfo[];
  /** Pass as `beforeId` for the next page; null on the last page. */
  readonly nextBeforeId: string | null;
}
