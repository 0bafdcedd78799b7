import { EventEmitter } from "node:events";
import { DEFAULT_MAX_PARAMETER_BYTES } from "../codec/index.ts";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Cleaner, type RetentionOptions } from "../maintenance/cleaner.ts";
import { Elector } from "../maintenance/elector.ts";
import { Rescuer } from "../maintenance/rescuer.ts";
import type { DriverTransaction, StorageDriver, TaskInsertParams } from "../store/driver.ts";
import {
  clearDefaultRuntime,
  runInScope,
  setDefaultRuntime,
  type StartRequest,
  type TaskHandle,
  type TaskStarter,
} from "../tasks/ambient.ts";
import { TaskCanceledError } from "../tasks/errors/task-canceled-error.ts";
import { TaskFailedError } from "../tasks/errors/task-failed-error.ts";
import { TaskNotFoundError } from "../tasks/errors/task-not-found-error.ts";
import { TaskStartError } from "../tasks/errors/task-start-error.ts";
import type { Logger } from "../tasks/logger.ts";
import { integer, queueName, TaskRegistry } from "../tasks/registry.ts";
import type { StartableTaskClass } from "../tasks/task.ts";
import type { TaskFilter, TaskInfo, TaskPage, TaskState } from "../tasks/types.ts";
import { Worker, type UserConnectionFactory, type WorkerEvent } from "../worker/worker.ts";
import { SqliteDriver } from "../store/sqlite/driver.ts";
import { openDriver } from "./database-url.ts";
import { InitiatorSigner, resolveSecret } from "./initiator-signature.ts";
import { createLogger } from "./logger.ts";

export interface WorkerConfig {
  /** Tasks run at once by this process. Default 10. */
  readonly concurrency?: number;
  /** Queues to take tasks from. Default: all. */
  readonly queues?: readonly string[];
  /** Lease of a running task without heartbeat, ms. Default 15,000. */
  readonly leaseMs?: number;
  /** Heartbeat period, ms. Default leaseMs / 3. */
  readonly heartbeatMs?: number;
  /** Fallback polling period, ms. Default 1,000. */
  readonly pollIntervalMs?: number;
  /** Most tasks claimed at once. Default min(concurrency, 100). */
  readonly batchSize?: number;
}

export interface RuntimeConfig {
  /** A SQLite file path, a `sqlite:` URL, a `postgres://` URL, or a StorageDriver. */
  readonly db: string | StorageDriver;
  /** Task classes this process can run. Classes started here are added automatically. */
  readonly tasks?: readonly StartableTaskClass[];
  /** Worker settings, or false for a process that only starts and inspects tasks. */
  readonly worker?: WorkerConfig | false;
  /**
   * Maintenance (rescuing expired leases) runs on one elected node at a time. `rescueIntervalMs`
   * (default 5,000), `leaderTermMs` (default 15,000: a dead leader is replaced within it), or
   * false for a process that never does maintenance.
   */
  readonly maintenance?:
    | {
        readonly rescueIntervalMs?: number;
        readonly leaderTermMs?: number;
        /** Retention of ended tasks (default: succeeded 7 days, dead and canceled 30 days), or false to keep all. */
        readonly retention?: RetentionOptions | false;
      }
    | false;
  /** Rebuilds the UserConnection of the user who started a task. */
  readonly userConnectionFactory?: UserConnectionFactory;
  /** A pino (or compatible) logger; false for none. Default: pino on stderr. */
  readonly logger?: Logger | false;
  /** SQLite commit durability: "normal" (default) or "full". See docs/durability.md. */
  readonly durability?: "normal" | "full";
  /** Largest encoded parameters, bytes. Default 1 MiB. */
  readonly maxParameterBytes?: number;
  /** How long stop() lets running tasks finish before aborting them, ms. Default 10,000. */
  readonly shutdownGraceMs?: number;
  /**
   * The server secret that signs the initiator of tasks started with a user connection. Default:
   * UNDERWAY_SECRET; on SQLite, else a random secret kept beside the database file. PostgreSQL
   * nodes must share one, so there it must be set. At least 16 characters.
   */
  readonly secret?: string;
}

export interface RuntimeEvents {
  taskStarted: [Extract<WorkerEvent, { type: "taskStarted" }>];
  taskSucceeded: [Extract<WorkerEvent, { type: "taskSucceeded" }>];
  taskFailed: [Extract<WorkerEvent, { type: "taskFailed" | "taskDead" }>];
  taskDead: [Extract<WorkerEvent, { type: "taskFailed" | "taskDead" }>];
  taskReleased: [Extract<WorkerEvent, { type: "taskReleased" }>];
}

type State = "new" | "starting" | "started" | "stopping" | "stopped";

/** One runtime: a store, optionally a worker and the maintenance services, and the task API. */
export class Runtime implements TaskStarter {
  readonly driver: StorageDriver;
  readonly registry: TaskRegistry;
  readonly logger: Logger;
  readonly maxParameterBytes: number;
  readonly worker: Worker | null;
  readonly rescuer: Rescuer | null;
  readonly elector: Elector | null;
  readonly cleaner: Cleaner | null;
  /** This process's id in the store: worker id and maintenance holder id. */
  readonly nodeId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly events = new EventEmitter<RuntimeEvents>();
  private readonly endWaiters = new Map<string, Set<() => void>>();
  private state: State = "new";
  private stopping: Promise<void> | null = null;
  private signalHandlers: (() => void) | null = null;
  private readonly signer: InitiatorSigner | null;

  constructor(private readonly config: RuntimeConfig) {
    if (!config || typeof config !== "object") throw new TypeError("createRuntime needs a configuration object");
    this.logger = createLogger(config.logger);
    this.registry = new TaskRegistry(config.tasks ?? []);
    this.maxParameterBytes = config.maxParameterBytes ?? DEFAULT_MAX_PARAMETER_BYTES;
    if (!Number.isInteger(this.maxParameterBytes) || this.maxParameterBytes < 1) {
      throw new RangeError(`maxParameterBytes must be a positive integer, got ${String(config.maxParameterBytes)}`);
    }
    this.driver = openDriver(config.db, config.durability ? { durability: config.durability } : {});
    const key = resolveSecret(config.secret, this.driver instanceof SqliteDriver ? this.driver.filePath : null);
    this.signer = key ? new InitiatorSigner(key) : null;
    const scope = { runtime: this as TaskStarter };
    this.worker =
      config.worker === false
        ? null
        : new Worker({
            driver: this.driver,
            registry: this.registry,
            logger: this.logger,
            scope,
            workerId: this.nodeId,
            ...config.worker,
            ...(config.userConnectionFactory ? { userConnectionFactory: config.userConnectionFactory } : {}),
            onEvent: (e) => this.onWorkerEvent(e),
            verifyInitiator: (task) =>
              Boolean(task.initiator && this.signer?.verify(task.name, task.initiator, task.parameters, task.initiatorSignature)),
          });
    const maintenance = config.maintenance === false ? null : (config.maintenance ?? {});
    this.elector = maintenance
      ? new Elector({
          driver: this.driver,
          logger: this.logger,
          holderId: this.nodeId,
          ...(maintenance.leaderTermMs ? { ttlMs: maintenance.leaderTermMs } : {}),
          onChange: (leading) => {
            if (leading) this.rescuer?.nudge();
          },
        })
      : null;
    this.cleaner =
      maintenance && maintenance.retention !== false
        ? new Cleaner({ driver: this.driver, logger: this.logger, ...maintenance.retention, isLeader: () => this.elector?.isLeader ?? false })
        : null;
    this.rescuer = maintenance
      ? new Rescuer({
          driver: this.driver,
          logger: this.logger,
          ...(maintenance.rescueIntervalMs ? { intervalMs: maintenance.rescueIntervalMs } : {}),
          onRescued: () => this.worker?.wake(),
          isLeader: () => this.elector?.isLeader ?? false,
        })
      : null;
  }

  /** Applies pending migrations to the store, then starts the worker and maintenance. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`the runtime cannot start: it is ${this.state}`);
    this.state = "starting";
    try {
      await this.driver.migrate();
    } catch (error) {
      this.state = "stopped";
      await this.driver.close().catch(() => undefined);
      throw error;
    }
    setDefaultRuntime(this);
    this.worker?.start();
    this.elector?.start();
    this.rescuer?.start(true);
    this.cleaner?.start();
    this.state = "started";
    this.logger.info(
      { db: this.driver.description, worker: this.worker?.id ?? null, tasks: this.registry.names() },
      "underway runtime started",
    );
  }

  /** Stops claiming, lets running tasks finish (graceMs), queues the rest again, closes the store. */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      const was = this.state;
      this.state = "stopping";
      this.signalHandlers?.();
      if (was === "started") {
        await this.worker?.stop({ graceMs: options.graceMs ?? this.config.shutdownGraceMs ?? 10_000 });
        await this.rescuer?.stop();
        await this.cleaner?.stop();
        await this.elector?.stop();
      }
      clearDefaultRuntime(this);
      await this.driver.close();
      this.state = "stopped";
      for (const waiters of this.endWaiters.values()) for (const w of waiters) w();
    })();
    return this.stopping;
  }

  /** Stops gracefully on SIGTERM and SIGINT. Returns a function that removes the handlers. */
  handleSignals(): () => void {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.logger.info({ signal }, "stopping: letting running tasks finish");
      this.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          this.logger.error({ err: error }, "stopping failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    const remove = (): void => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      this.signalHandlers = null;
    };
    this.signalHandlers = remove;
    return remove;
  }

  /** Runs fn with this runtime as the one the static Task facade uses. */
  run<T>(fn: () => T): T {
    return runInScope({ runtime: this }, fn);
  }

  /**
   * Runs fn in one database transaction. Tasks started inside it (with the Task facade) exist if
   * and only if the transaction commits. `tx.execute` runs the caller's own statements in it.
   */
  async transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T> {
    this.assertUsable();
    const result = await this.driver.transaction((tx) => runInScope({ runtime: this, transaction: tx }, () => fn(tx)));
    this.worker?.wake();
    return result;
  }

  async startTask(request: StartRequest, transaction: unknown): Promise<TaskHandle> {
    const [handle] = await this.startTasks([request], transaction);
    return handle as TaskHandle;
  }

  async startTasks(requests: readonly StartRequest[], transaction: unknown): Promise<TaskHandle[]> {
    this.assertUsable();
    const rows = requests.map((r) => this.insertParams(r));
    const tx = transaction as DriverTransaction | undefined;
    if (tx !== undefined && tx.driver !== this.driver) {
      throw new TaskStartError("the transaction in scope belongs to another runtime's store; start the task with that runtime");
    }
    const ids = rows.length === 1 ? [await this.driver.taskInsert(rows[0] as TaskInsertParams, tx)] : await this.driver.taskInsertMany(rows, tx);
    if (!tx) this.worker?.wake();
    return ids.map((id) => this.handle(id));
  }

  private insertParams(request: StartRequest): TaskInsertParams {
    const { options: classOptions, name } = this.registry.register(request.taskClass, "Task.startNew");
    const o = request.options;
    let runAtMs: number | undefined;
    if (o.runAt !== undefined) {
      if (!(o.runAt instanceof Date) || Number.isNaN(o.runAt.getTime())) {
        throw new TaskStartError(`options.runAt must be a valid Date, got ${String(o.runAt)}`);
      }
      runAtMs = o.runAt.getTime();
    }
    if (o.delayMs !== undefined && (typeof o.delayMs !== "number" || !Number.isFinite(o.delayMs) || o.delayMs < 0)) {
      throw new TaskStartError(`options.delayMs must be a number of ms >= 0, got ${String(o.delayMs)}`);
    }
    const maxAttempts = o.maxAttempts ?? classOptions.maxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new TaskStartError(`options.maxAttempts must be an integer >= 1, got ${String(maxAttempts)}`);
    }
    const timeoutMs = o.timeoutMs ?? classOptions.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
      throw new TaskStartError(`options.timeoutMs must be an integer >= 0 (0 = no timeout), got ${String(timeoutMs)}`);
    }
    return {
      name,
      queue: o.queue === undefined ? classOptions.queue : queueName(o.queue, "options.queue"),
      priority: o.priority === undefined ? classOptions.priority : integer(o.priority, "options.priority"),
      parameters: request.parameters,
      maxAttempts,
      timeoutMs,
      ...(runAtMs !== undefined ? { runAtMs } : {}),
      ...(o.delayMs !== undefined ? { delayMs: Math.round(o.delayMs) } : {}),
      initiator: request.initiator,
      withUserConnection: request.withUserConnection,
      initiatorSignature: request.initiator ? this.signInitiator(name, request) : null,
    };
  }

  private signInitiator(name: string, request: StartRequest): string {
    if (!this.signer) {
      throw new TaskStartError(
        "tasks with a user connection need a server secret on this store: set UNDERWAY_SECRET (the same on every node) or createRuntime({ secret })",
      );
    }
    return this.signer.sign(name, request.initiator as NonNullable<StartRequest["initiator"]>, request.parameters);
  }

  private handle(id: string): TaskHandle {
    return {
      id,
      get: () => this.getTask(id),
      wait: (options) => this.waitForTask(id, options),
    };
  }

  /** The task with this id; TaskNotFoundError when there is none. */
  async getTask(id: string): Promise<TaskInfo> {
    this.assertUsable();
    const task = await this.driver.taskGet(String(id));
    if (!task) throw new TaskNotFoundError(String(id));
    return task;
  }

  async findTask(id: string): Promise<TaskInfo | null> {
    this.assertUsable();
    return this.driver.taskGet(String(id));
  }

  /** Tasks newest first, filtered, one page at a time. */
  listTasks(filter: TaskFilter = {}): Promise<TaskPage> {
    this.assertUsable();
    return this.driver.taskList(filter);
  }

  /**
   * Cancels a task that has not ended: a queued one never runs; a running one's signal aborts at
   * once when it runs in this process, else at its worker's next heartbeat. False when there is no
   * such task or it had already ended.
   */
  async cancelTask(id: string): Promise<boolean> {
    this.assertUsable();
    const previous = await this.driver.taskCancel({ id: String(id) });
    if (previous === "running") this.worker?.abortTask(String(id), new TaskCanceledError(String(id)));
    return previous !== null;
  }

  /** Queues a failed, dead or canceled task again at once. */
  async retryTask(id: string): Promise<boolean> {
    this.assertUsable();
    const retried = await this.driver.taskRetry({ id: String(id) });
    if (retried) this.worker?.wake();
    return retried;
  }

  /** Deletes a task that is not running. */
  async deleteTask(id: string): Promise<boolean> {
    this.assertUsable();
    return this.driver.taskDelete({ id: String(id) });
  }

  countTasks(): Promise<Record<TaskState, number>> {
    this.assertUsable();
    return this.driver.taskCountByState();
  }

  /**
   * Waits until the task ends. Resolves with the task when it succeeded; rejects with
   * TaskFailedError when it ended dead or canceled. Local completions wake the wait at once;
   * completions in other processes are seen by polling.
   */
  async waitForTask(id: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TaskInfo> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let delay = 20;
    for (;;) {
      const task = await this.getTask(id);
      if (task.state === "succeeded") return task;
      if (task.state === "dead" || task.state === "canceled") throw new TaskFailedError(task);
      options.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${options.timeoutMs} ms waiting for task ${id} (it is ${task.state})`);
      await this.nextEndOf(id, Math.min(delay, left), options.signal);
      delay = Math.min(delay * 2, 1_000);
      if (this.state === "stopped") throw new Error(`the runtime stopped while waiting for task ${id}`);
    }
  }

  private nextEndOf(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.endWaiters.get(id);
      if (!set) this.endWaiters.set(id, (set = new Set()));
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0) this.endWaiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done);
      waiters.add(done);
    });
  }

  on<E extends keyof RuntimeEvents>(event: E, listener: (...args: RuntimeEvents[E]) => void): this {
    this.events.on(event, listener as never);
    return this;
  }

  off<E extends keyof RuntimeEvents>(event: E, listener: (...args: RuntimeEvents[E]) => void): this {
    this.events.off(event, listener as never);
    return this;
  }

  private onWorkerEvent(event: WorkerEvent): void {
    if (event.type !== "taskStarted") {
      const waiters = this.endWaiters.get(event.taskId);
      if (waiters) for (const w of [...waiters]) w();
    }
    try {
      this.events.emit(event.type, event as never);
    } catch (error) {
      this.logger.error({ err: error, event: event.type }, "a runtime event listener threw");
    }
  }

  private assertUsable(): void {
    if (this.state === "stopped" || this.state === "stopping") throw new Error("the runtime has stopped");
    if (this.state === "new" || this.state === "starting") {
      throw new Error("the runtime has not started: await runtime.start() first");
    }
  }
}

/** Creates a runtime; call start() to migrate the store and begin working. */
export function createRuntime(config: RuntimeConfig): Runtime {
  return new Runtime(config);
}
