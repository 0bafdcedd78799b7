import { EventEmitter } from "node:events";
import { DEFAULT_MAX_PARAMETER_BYTES, warmCodec } from "../codec/index.ts";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Cleaner, type RetentionOptions } from "../maintenance/cleaner.ts";
import { Elector } from "../maintenance/elector.ts";
import { Rescuer } from "../maintenance/rescuer.ts";
import { handOffAllowed, HELD_RUN_AT_MS, type ClaimedTask, type DriverTransaction, type StorageDriver, type TaskInsertParams } from "../store/driver.ts";
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
import { TaskStartError, TaskStartSettingError } from "../tasks/errors/task-start-error.ts";
import type { Logger } from "../tasks/logger.ts";
import { checkTimerMs, maxAttemptsOf, priorityOf, queueName, TASK_LIMITS, TaskRegistry, timeoutMsOf } from "../tasks/registry.ts";
import type { StartableTaskClass } from "../tasks/task.ts";
import type { StartOptions, TaskFilter, TaskInfo, TaskPage, TaskState } from "../tasks/types.ts";
import { Worker, type UserConnectionFactory, type WorkerEvent } from "../worker/worker.ts";
import { SqliteDriver } from "../store/sqlite/driver.ts";
import { openDriver } from "./database-url.ts";
import { InitiatorSigner, resolveSecret } from "./initiator-signature.ts";
import { createLogger } from "./logger.ts";
import { StoreLender, storeInfoOf } from "../store/remote/lender.ts";
import { ThreadPool } from "../worker/isolation/pool.ts";
import type { ThreadBoot } from "./isolation/thread-main.ts";
import { importTaskModule, moduleUserConnections, taskModuleUrl, type TaskModuleSpecifier } from "./task-modules.ts";
import { threadBundle } from "./isolation/thread-bundle.ts";
// Issue #9: scheduling, composition and observability.
import { Continuer } from "../maintenance/continuer.ts";
import { cronTicks } from "../maintenance/cron.ts";
import { Scheduler } from "../maintenance/scheduler.ts";
import { TaskMetrics } from "../observability/metrics.ts";
import { AttemptSpans, withEnqueueSpan } from "../observability/tracing.ts";
import type { RescuedDeadTask, TaskRetryFilter, TaskStats } from "../store/driver.ts";
import type { ContinuationCondition } from "../tasks/ambient.ts";
import { isStorableText } from "../tasks/error-info.ts";
import { decodeTaskResult } from "../tasks/result.ts";
import type { ScheduleInfo } from "../tasks/schedules.ts";
import { checkScheduleName, scheduleRow, type ScheduleDefinition } from "./schedules.ts";
import { checkKnownKeys, keysOf } from "../tasks/known-keys.ts";
import { refuseWorkerInTaskThread } from "./isolation/task-thread.ts";

/** The earliest runAt (a time in the past is simply due): the first day of year 1, which both stores hold. */
const EARLIEST_RUN_AT_MS = Date.parse("0001-01-01T00:00:00Z");

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
  /** Most tasks claimed in one statement. Default min(concurrency, 100) + prefetch, at most 500. */
  readonly batchSize?: number;
  /**
   * While recent runs are short (under 50 ms), claim up to this many tasks ahead of the free
   * slots, so a slot that frees starts its next task without a claim's round trip and one
   * claim's commit serves many tasks. The depth starts at min(concurrency, 100) and grows by one
   * with each short run, and never holds more than the slots run in half the hold (half a
   * second with the default lease) at the recent pace. Held at most a second (a third of the lease), then handed back;
   * not used with queueConcurrency or rate limits. 0 turns it off. Default 500.
   */
  readonly prefetch?: number;
  /** Per queue, the most tasks of that queue this worker runs at once (within concurrency). */
  readonly queueConcurrency?: Readonly<Record<string, number>>;
}

/** Where task code runs; see docs/isolation.md. */
export interface IsolationConfig {
  /**
   * "thread" (default): every attempt in a worker thread of its own, stopped at its timeout or
   * memory limit, or when it exits the thread, without touching other tasks. "none": on the
   * worker's event loop (trusted code only). A class's `taskOptions.isolation` wins over this.
   */
  readonly mode?: "thread" | "none";
  /** Heap limit of a task's thread, MB, unless its class sets one. Default 256. */
  readonly memoryLimitMb?: number;
  /** After a cancel or timeout, how long a task may take to stop by itself before its thread is stopped, ms. Default 5,000. */
  readonly abortGraceMs?: number;
  /**
   * Threads kept booted while idle (at most the worker's concurrency). Default 2: an attempt that
   * runs long, or away, on one of them never makes the next short one wait for a thread to boot.
   */
  readonly minThreads?: number;
  /** An idle thread above minThreads is retired after this long, ms. Default 30,000. */
  readonly idleThreadMs?: number;
}

export interface RuntimeConfig {
  /** A SQLite file path, a `sqlite:` URL, a `postgres://` URL, or a StorageDriver. */
  readonly db: string | StorageDriver;
  /**
   * Task classes this process can run, or modules that export them (a path, a file: URL string or
   * a URL): isolated threads import those modules too. Classes started here are added
   * automatically. A class given directly runs isolated only when it declares its module
   * (`static taskModule = import.meta.url`).
   */
  readonly tasks?: readonly (StartableTaskClass | TaskModuleSpecifier)[];
  /** Where task code runs: "thread" (default), "none", or the detailed settings. */
  readonly isolation?: "thread" | "none" | IsolationConfig;
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
        /** How often the leader fires due cron ticks and starts continuations whose predecessors ended, ms. Default 1,000. */
        readonly scheduleIntervalMs?: number;
        /** A cron tick fired later than this counts as missed and follows the schedule's `missed` policy, ms. Default 60,000. */
        readonly missedAfterMs?: number;
      }
    | false;
  /** Recurring tasks defined in code; created or updated in the store at start. See docs/scheduling.md. */
  readonly schedules?: readonly ScheduleDefinition[];
  /** Rebuilds the UserConnection of the user who started a task (in the worker's process). */
  readonly userConnectionFactory?: UserConnectionFactory;
  /**
   * A module (path or file: URL) whose export `userConnectionFactory` rebuilds a task's
   * UserConnection: task threads import it, since a function cannot be handed to a thread. The
   * worker's process uses it too when `userConnectionFactory` is not given.
   */
  readonly userConnectionModule?: string | URL;
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

const RUNTIME_CONFIG_KEYS = keysOf<RuntimeConfig>()([
  "db",
  "tasks",
  "isolation",
  "worker",
  "maintenance",
  "schedules",
  "userConnectionFactory",
  "userConnectionModule",
  "logger",
  "durability",
  "maxParameterBytes",
  "shutdownGraceMs",
  "secret",
]);
const WORKER_CONFIG_KEYS = keysOf<WorkerConfig>()(["concurrency", "queues", "leaseMs", "heartbeatMs", "pollIntervalMs", "batchSize", "prefetch", "queueConcurrency"]);
const ISOLATION_CONFIG_KEYS = keysOf<IsolationConfig>()(["mode", "memoryLimitMb", "abortGraceMs", "minThreads", "idleThreadMs"]);
const MAINTENANCE_CONFIG_KEYS = keysOf<Exclude<RuntimeConfig["maintenance"], false | undefined>>()([
  "rescueIntervalMs",
  "leaderTermMs",
  "retention",
  "scheduleIntervalMs",
  "missedAfterMs",
]);
const RETENTION_KEYS = keysOf<RetentionOptions>()(["succeededMs", "failedMs", "intervalMs"]);
const START_OPTION_KEYS = keysOf<StartOptions>()(["queue", "priority", "maxAttempts", "timeoutMs", "runAt", "delayMs", "delay", "dedupKey", "dedupUntil"]);

export interface RuntimeEvents {
  taskStarted: [Extract<WorkerEvent, { type: "taskStarted" }>];
  taskSucceeded: [Extract<WorkerEvent, { type: "taskSucceeded" }>];
  taskFailed: [Extract<WorkerEvent, { type: "taskFailed" | "taskDead" }>];
  taskDead: [Extract<WorkerEvent, { type: "taskFailed" | "taskDead" }>];
  taskReleased: [Extract<WorkerEvent, { type: "taskReleased" }>];
  /** An attempt of this process ended without its outcome counting: canceled while it ran, or its lease lost. */
  taskDiscarded: [Extract<WorkerEvent, { type: "taskDiscarded" }>];
}

type State = "new" | "starting" | "started" | "stopping" | "stopped";

/** Wiring that is not part of the public configuration (the platform, isolated threads). */
export interface RuntimeInternals {
  /** The initiator-signing key, as the worker's process resolved it. */
  readonly secretKey?: Buffer;
  /** A module whose createThreadHost builds the runtime of an isolated thread (the platform's). */
  readonly threadHost?: string;
  /** How long stop() waits for the maintenance services, and then for the store to close, ms. Default 5,000 (tests shorten it). */
  readonly stopWaitMs?: number;
  /** What the configuration is called in errors, and the options it has beside the runtime's (the platform's). */
  readonly configName?: string;
  readonly moreConfigKeys?: readonly string[];
}

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
  /** Fires cron schedules on the maintenance leader (issue #9). */
  readonly scheduler: Scheduler | null;
  /** Starts continuations whose predecessors ended, on the maintenance leader (issue #9). */
  readonly continuer: Continuer | null;
  /** Prometheus metrics of this runtime; `GET /metrics` serves them. */
  readonly metrics: TaskMetrics;
  private readonly attemptSpans = new AttemptSpans();
  private continuationsSoon = false;
  private continuationsAgain: NodeJS.Timeout | null = null;
  /** This process's id in the store: worker id and maintenance holder id. */
  readonly nodeId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly events = new EventEmitter<RuntimeEvents>();
  private readonly endWaiters = new Map<string, Set<() => void>>();
  private state: State = "new";
  private stopping: Promise<void> | null = null;
  private signalHandlers: (() => void) | null = null;
  private readonly signer: InitiatorSigner | null;
  /** Task modules to import at start, as file URLs. */
  private readonly taskModules: string[];
  /** config.userConnectionModule as a file: URL. */
  private readonly userConnectionModule: string | null;
  private readonly pool: ThreadPool | null;
  private readonly stopWaitMs: number;

  constructor(
    private readonly config: RuntimeConfig,
    internals: RuntimeInternals = {},
  ) {
    if (!config || typeof config !== "object") throw new TypeError("createRuntime needs a configuration object");
    const configName = internals.configName ?? "createRuntime's configuration";
    checkKnownKeys(config, [...RUNTIME_CONFIG_KEYS, ...(internals.moreConfigKeys ?? [])], configName);
    if (config.worker !== undefined && config.worker !== false) {
      if (typeof config.worker !== "object" || config.worker === null) throw new TypeError(`worker must be an object or false, got ${String(config.worker)}`);
      checkKnownKeys(config.worker, WORKER_CONFIG_KEYS, "worker");
    }
    if (config.worker !== false) refuseWorkerInTaskThread(internals.configName === undefined ? "createRuntime" : configName.replace(/'s configuration$/, ""));
    this.logger = createLogger(config.logger);
    this.stopWaitMs = internals.stopWaitMs ?? STOP_WAIT_MS;
    const tasks = config.tasks ?? [];
    if (!Array.isArray(tasks)) throw new TypeError("tasks must be an array of task classes or task modules");
    this.userConnectionModule = config.userConnectionModule === undefined ? null : taskModuleUrl(config.userConnectionModule);
    this.taskModules = tasks.filter((t): t is TaskModuleSpecifier => typeof t === "string" || t instanceof URL).map(taskModuleUrl);
    this.registry = new TaskRegistry(tasks.filter((t) => typeof t !== "string" && !(t instanceof URL)));
    this.maxParameterBytes = config.maxParameterBytes ?? DEFAULT_MAX_PARAMETER_BYTES;
    if (!Number.isSafeInteger(this.maxParameterBytes) || this.maxParameterBytes < 1) {
      throw new RangeError(`maxParameterBytes must be a positive integer, got ${String(config.maxParameterBytes)}`);
    }
    if (config.shutdownGraceMs !== undefined) checkGraceMs(config.shutdownGraceMs, "shutdownGraceMs");
    // A runtime without a worker has no one to wake when another process stores work: on
    // PostgreSQL it opens no LISTEN connection, so it holds one connection fewer and the server
    // does not deliver it every insert's notification. On PostgreSQL it keeps connections ready
    // for what runs at once after a start: a worker's claim, its completions and maintenance
    // (3); without a worker, the application's starts beside maintenance (2); none for a runtime
    // with neither (the CLI's inspection commands, which run none of the queue's statements).
    this.driver = openDriver(config.db, {
      ...(config.durability ? { durability: config.durability } : {}),
      ...(config.worker === false ? { watch: false } : {}),
      warmConnections: config.worker !== false ? 3 : config.maintenance === false ? 0 : 2,
    });
    const key = internals.secretKey ?? resolveSecret(config.secret, this.driver instanceof SqliteDriver ? this.driver.filePath : null);
    this.signer = key ? new InitiatorSigner(key) : null;
    const scope = { runtime: this as TaskStarter };
    const isolation = isolationOf(config.isolation);
    const maxThreads = config.worker === false ? 0 : (config.worker?.concurrency ?? 10);
    this.pool =
      config.worker === false
        ? null
        : new ThreadPool({
            entry: new URL("./isolation/thread-boot.mjs", import.meta.url),
            workerData: {
              store: storeInfoOf(this.driver),
              secretKey: key ? new Uint8Array(key) : null,
              hostModule: internals.threadHost ?? null,
              userConnectionModule: this.userConnectionModule,
              processHasUserConnections: config.userConnectionFactory !== undefined,
              taskModules: this.taskModules,
              maxParameterBytes: this.maxParameterBytes,
              bundle: null,
            } satisfies Omit<ThreadBoot, "storePort" | "hostPort" | "pauseCell" | "pauseName" | "classModules">,
            classModules: () => this.registry.modules().filter((url) => !this.taskModules.includes(url)),
            prepare: async () => {
              const modules = [
                ...(internals.threadHost ? [internals.threadHost] : []),
                ...(this.userConnectionModule ? [this.userConnectionModule] : []),
                ...this.taskModules,
                ...this.registry.modules(),
              ];
              const bundle = await threadBundle(this.logger, [...new Set(modules)]);
              return bundle && { entry: bundle.entry, workerData: { bundle: { built: bundle.built, modules: bundle.modules } } };
            },
            lendStore: (port) =>
              new StoreLender(this.driver, port, {
                onWrite: () => this.worker?.wake(),
                // Its tasks' starts are this process's, as if they had run here.
                onInserted: (names) => {
                  for (const name of names) this.metrics.taskEnqueued(name);
                },
                // Its continuations are started from here, as if stored here (see startContinuation).
                onContinuation: () => {
                  this.resolveContinuationsSoon();
                  this.resolveContinuationsAgain();
                },
                // Its waits for tasks end when this process's worker ends them, as waits here do.
                awaitEnd: (taskId, ms) => this.nextEndOf(taskId, ms),
              }),
            stopBlockedInTransaction: this.driver.dialect === "sqlite",
            logger: this.logger,
            minThreads: isolation.mode === "thread" ? Math.min(isolation.minThreads, maxThreads) : 0,
            maxThreads,
            idleMs: isolation.idleThreadMs,
            memoryLimitMb: isolation.memoryLimitMb,
          });
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
            ...(config.userConnectionFactory
              ? { userConnectionFactory: config.userConnectionFactory }
              : this.userConnectionModule
                ? { userConnectionFactory: moduleUserConnections(this.userConnectionModule) }
                : {}),
            onEvent: (e) => this.onWorkerEvent(e),
            onContinuations: () => this.resolveContinuationsSoon(),
            isolation: { pool: this.pool, mode: isolation.mode, abortGraceMs: isolation.abortGraceMs },
            verifyInitiator: (task) =>
              this.signer ? Boolean(task.initiator && this.signer.verify(task.name, task.initiator, task.parameters, task.initiatorSignature)) : null,
          });
    const maintenance = maintenanceOf(config.maintenance, this.logger);
    this.elector = maintenance
      ? new Elector({
          driver: this.driver,
          logger: this.logger,
          holderId: this.nodeId,
          ...(maintenance.leaderTermMs ? { ttlMs: maintenance.leaderTermMs } : {}),
          onChange: (leading) => {
            // A new leader's first passes run at once, not an interval later: ticks due while the
            // previous leader was gone fire, and continuations released meanwhile run.
            if (!leading) return;
            this.rescuer?.nudge();
            this.scheduler?.nudge();
            this.continuer?.nudge();
          },
        })
      : null;
    this.cleaner =
      maintenance && maintenance.retention !== false
        ? new Cleaner({ driver: this.driver, logger: this.logger, ...maintenance.retention, isLeader: () => this.elector?.isLeader ?? false })
        : null;
    const leading = (): boolean => this.elector?.isLeader ?? false;
    this.scheduler = maintenance
      ? new Scheduler({
          driver: this.driver,
          logger: this.logger,
          isLeader: leading,
          onFired: () => this.worker?.wake(),
          ...(maintenance.scheduleIntervalMs ? { intervalMs: maintenance.scheduleIntervalMs } : {}),
          ...(maintenance.missedAfterMs !== undefined ? { missedAfterMs: maintenance.missedAfterMs } : {}),
        })
      : null;
    this.continuer = maintenance
      ? new Continuer({
          driver: this.driver,
          logger: this.logger,
          isLeader: leading,
          onReleased: () => this.worker?.wake(),
          ...(maintenance.scheduleIntervalMs ? { intervalMs: maintenance.scheduleIntervalMs } : {}),
        })
      : null;
    this.metrics = new TaskMetrics(this.driver, this.registry);
    this.rescuer = maintenance
      ? new Rescuer({
          driver: this.driver,
          logger: this.logger,
          ...(maintenance.rescueIntervalMs ? { intervalMs: maintenance.rescueIntervalMs } : {}),
          onRescued: () => this.worker?.wake(),
          onDead: (tasks) => this.rescuedDead(tasks),
          isLeader: () => this.elector?.isLeader ?? false,
        })
      : null;
  }

  /**
   * Applies pending migrations to the store, then starts the worker and maintenance.
   * `afterMigrate` runs in between: the platform sets up its tables there, before any task runs.
   */
  start(hooks: { afterMigrate?: () => Promise<void> } = {}): Promise<void> {
    if (this.state !== "new") return Promise.reject(new Error(`the runtime cannot start: it is ${this.state}`));
    this.state = "starting";
    this.starting = this.startNow(hooks);
    return this.starting;
  }

  /** The start under way, for a stop that comes meanwhile to wait for. */
  private starting: Promise<void> | null = null;

  private async startNow(hooks: { afterMigrate?: () => Promise<void> }): Promise<void> {
    try {
      await this.driver.migrate();
    } catch (error) {
      this.state = "stopped";
      await this.driver.close().catch(() => undefined);
      throw error;
    }
    try {
      await hooks.afterMigrate?.();
      for (const url of this.taskModules) {
        for (const c of await importTaskModule(url)) this.registry.register(c, url, url);
      }
      // Threads boot before the first claim, so the first task does not wait for one; the store's
      // connections get ready meanwhile (a failure there only leaves the first statements slower).
      await Promise.all([
        this.worker ? this.pool?.warm() : undefined,
        this.driver.warm?.().catch((error: unknown) => this.logger.warn({ err: error }, "the store's connections could not be readied")),
      ]);
      warmCodec();
    } catch (error) {
      this.state = "stopped";
      await this.pool?.close();
      await this.driver.close().catch(() => undefined);
      throw error;
    }
    try {
      for (const def of this.config.schedules ?? []) await this.defineScheduleNow(def);
    } catch (error) {
      this.state = "stopped";
      await this.pool?.close();
      await this.driver.close().catch(() => undefined);
      throw error;
    }
    setDefaultRuntime(this);
    this.worker?.start();
    this.elector?.start();
    this.rescuer?.start(true);
    this.cleaner?.start();
    this.scheduler?.start();
    this.continuer?.start();
    this.state = "started";
    this.logger.info(
      { db: this.driver.description, worker: this.worker?.id ?? null, tasks: this.registry.names() },
      "underway runtime started",
    );
  }

  /** Stops claiming, lets running tasks finish (graceMs), queues the rest again, closes the store. */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (options.graceMs !== undefined) {
      try {
        checkGraceMs(options.graceMs, "stop({ graceMs })");
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      // A start under way ends first, its services started (they are stopped below as a whole)
      // or its failure cleaned up: stopped halfway, they would run on against a closed store.
      if (this.state === "starting") await this.starting?.catch(() => undefined);
      const was = this.state;
      this.state = "stopping";
      this.signalHandlers?.();
      if (was === "started") {
        await this.worker?.stop({ graceMs: options.graceMs ?? this.config.shutdownGraceMs ?? 10_000 });
        // A thread held in a native call (a synchronous child process, a blocking addon) ends
        // only when the call returns: the stop goes on without it after a while.
        if (this.pool) await this.waitAtMost(this.pool.close(), "the task threads to end (one is held in a native call)");
        // A pass or an election waits on the store; one that no longer answers (a lock held
        // elsewhere, a connection cut without a reset) must not hold the stop for good.
        await this.waitAtMost(
          Promise.all([this.rescuer?.stop(), this.cleaner?.stop(), this.scheduler?.stop(), this.continuer?.stop(), this.elector?.stop()]),
          "the maintenance services (a pass or an election waits for the store)",
        );
      }
      if (this.continuationsAgain) clearTimeout(this.continuationsAgain);
      clearDefaultRuntime(this);
      await this.waitAtMost(this.driver.close(), "the store to close (a statement under way holds a connection)");
      this.state = "stopped";
      for (const waiters of this.endWaiters.values()) for (const w of waiters) w();
    })();
    return this.stopping;
  }

  /** Waits for a part of the stop, at most stopWaitMs; past that, says so and leaves it to the process's exit. */
  private async waitAtMost(work: Promise<unknown>, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.stopWaitMs);
    });
    // A failure (the store failing to close) still reaches the caller, as before the bound.
    const outcome = await Promise.race([work.then(() => "done" as const), late]).finally(() => clearTimeout(timer));
    if (outcome === "late") {
      this.logger.warn({ waitedMs: this.stopWaitMs }, `stop: gave up waiting for ${what}; stopping without it`);
    }
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
    if (rows.length > 1 && rows.some((r) => r.dedupKey !== undefined)) {
      throw new TaskStartError("options.dedupKey applies to one start: use Task.startNew, not startNewMany");
    }
    const tx = transaction as DriverTransaction | undefined;
    if (tx !== undefined && tx.driver !== this.driver) {
      throw new TaskStartError("the transaction in scope belongs to another runtime's store; start the task with that runtime");
    }
    // One task due now, started outside a transaction, that this process's worker has room for:
    // the store hands it over as it stores it, when nothing else is due (no claim after).
    const one = rows.length === 1 && !tx ? (rows[0] as TaskInsertParams) : null;
    const reservation = one && this.driver.taskInsertClaimed && handOffAllowed(one) ? (this.worker?.reserveStart(one) ?? null) : null;
    let handedOver: ClaimedTask | null = null;
    let ids: string[];
    try {
      ids = await withEnqueueSpan(
        rows.map((r) => r.name),
        (traceContext) => {
          const traced = traceContext ? rows.map((r) => ({ ...r, traceContext })) : rows;
          if (reservation && this.driver.taskInsertClaimed) {
            return this.driver.taskInsertClaimed(traced[0] as TaskInsertParams, reservation).then(({ id, claimed }) => {
              handedOver = claimed;
              return [id];
            });
          }
          return traced.length === 1 ? this.driver.taskInsert(traced[0] as TaskInsertParams, tx).then((id) => [id]) : this.driver.taskInsertMany(traced, tx);
        },
      );
    } finally {
      reservation?.settle(handedOver);
    }
    for (const r of rows) this.metrics.taskEnqueued(r.name);
    if (!tx && !handedOver) this.worker?.wake();
    return ids.map((id) => this.handle(id));
  }

  private insertParams(request: StartRequest): TaskInsertParams {
    const { options: classOptions, name } = this.registry.register(request.taskClass, "Task.startNew");
    const o = request.options;
    checkKnownKeys(o, START_OPTION_KEYS, "the start's options", TaskStartError);
    let runAtMs: number | undefined;
    if (o.runAt !== undefined) {
      if (!(o.runAt instanceof Date) || Number.isNaN(o.runAt.getTime())) {
        throw new TaskStartError(`options.runAt must be a valid Date, got ${String(o.runAt)}`);
      }
      runAtMs = o.runAt.getTime();
    }
    if (o.dedupKey !== undefined && (typeof o.dedupKey !== "string" || o.dedupKey.length === 0 || o.dedupKey.length > 500)) {
      throw new TaskStartError(`options.dedupKey must be a string of 1-500 characters, got ${JSON.stringify(o.dedupKey)}`);
    }
    // PostgreSQL's text holds neither (a NUL is refused, a lone surrogate stored as U+FFFD, which
    // two different keys would then share): refused on every store alike.
    if (o.dedupKey !== undefined && !isStorableText(o.dedupKey)) {
      throw new TaskStartError(`options.dedupKey must not hold a NUL character or a lone surrogate, got ${JSON.stringify(o.dedupKey)}`);
    }
    if (o.dedupUntil !== undefined && o.dedupUntil !== "ended" && o.dedupUntil !== "started") {
      throw new TaskStartError(`options.dedupUntil must be "ended" or "started", got ${JSON.stringify(o.dedupUntil)}`);
    }
    if (o.delayMs !== undefined && o.delay !== undefined) {
      throw new TaskStartError(
        `options.delay and options.delayMs are the same setting (ms from now): give one of them, got delay ${String(o.delay)} and delayMs ${String(o.delayMs)}`,
      );
    }
    const delayOption = o.delay !== undefined ? "delay" : "delayMs";
    const delayMs = o.delay ?? o.delayMs;
    if (delayMs !== undefined && (typeof delayMs !== "number" || !Number.isFinite(delayMs) || delayMs < 0)) {
      throw new TaskStartError(`options.${delayOption} must be a number of ms >= 0, got ${String(delayMs)}`);
    }
    // Checked against this process's clock; the store adds the delay to its own.
    if (delayMs !== undefined && Date.now() + delayMs >= HELD_RUN_AT_MS) {
      throw new TaskStartError(`options.${delayOption} must end before 9999-12-31T23:59:59Z, got ${String(delayMs)} ms from now`);
    }
    if (runAtMs !== undefined && (runAtMs >= HELD_RUN_AT_MS || runAtMs < EARLIEST_RUN_AT_MS)) {
      throw new TaskStartError(`options.runAt must be from 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59Z, got ${new Date(runAtMs).toISOString()}`);
    }
    const maxAttempts = maxAttemptsOf(o.maxAttempts ?? classOptions.maxAttempts, "options.maxAttempts");
    const timeoutMs = timeoutMsOf(o.timeoutMs ?? classOptions.timeoutMs, "options.timeoutMs");
    return {
      name,
      queue: o.queue === undefined ? classOptions.queue : queueName(o.queue, "options.queue"),
      priority: o.priority === undefined ? classOptions.priority : priorityOf(o.priority, "options.priority"),
      parameters: request.parameters,
      maxAttempts,
      timeoutMs,
      ...(runAtMs !== undefined ? { runAtMs } : {}),
      ...(delayMs !== undefined ? { delayMs: Math.round(delayMs) } : {}),
      initiator: request.initiator,
      withUserConnection: request.withUserConnection,
      ...(o.dedupKey !== undefined ? { dedupKey: o.dedupKey, dedupUntilStart: o.dedupUntil === "started" } : {}),
      // Every initiator is signed where there is a secret: the worker runs a task as its stored
      // initiator only once the signature checks out (see Worker.userInScope).
      initiatorSignature: !request.initiator
        ? null
        : request.withUserConnection
          ? this.signInitiator(name, request)
          : (this.signer?.sign(name, request.initiator, request.parameters) ?? null),
    };
  }

  private signInitiator(name: string, request: StartRequest): string {
    if (!this.signer) throw new TaskStartSettingError(NO_SECRET);
    return this.signer.sign(name, request.initiator as NonNullable<StartRequest["initiator"]>, request.parameters);
  }

  /** Whether tasks started here are signed: false on a PostgreSQL store given no secret, where tasks with a user connection are refused. */
  get signsInitiators(): boolean {
    return this.signer !== null;
  }

  private handle(id: string): TaskHandle {
    return handleOf(this, id);
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
    if (previous !== null) this.resolveContinuationsSoon(); // its continuations end or start now
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
    if (options.timeoutMs !== undefined && (typeof options.timeoutMs !== "number" || Number.isNaN(options.timeoutMs) || options.timeoutMs < 0)) {
      throw new RangeError(`waitForTask: timeoutMs must be a number of ms >= 0, got ${String(options.timeoutMs)}`);
    }
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
      // In a task's thread: the worker's process, whose worker runs the tasks, tells of their ends.
      this.driver.taskEndNotice?.(id, ms).then(done, done);
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

  // --- Scheduling, composition and observability (issue #9). ---

  /** Creates or updates a recurring task in the store (a package's schedules come through here too). */
  async defineSchedule<C extends StartableTaskClass>(def: ScheduleDefinition<C>): Promise<void> {
    this.assertUsable();
    // The generic only types the parameters for the caller; scheduleRow checks the rest at run time.
    await this.defineScheduleNow(def as unknown as ScheduleDefinition);
  }

  private async defineScheduleNow(def: ScheduleDefinition): Promise<void> {
    await this.driver.scheduleUpsert(scheduleRow(def, this.registry, this.maxParameterBytes, await this.driver.clockNow()));
  }

  listSchedules(): Promise<ScheduleInfo[]> {
    this.assertUsable();
    return this.driver.scheduleList();
  }

  /** Stops firing a schedule until it is resumed; its ticks meanwhile are not made up for. */
  async pauseSchedule(name: string): Promise<void> {
    this.assertUsable();
    checkScheduleName(name);
    if (!(await this.driver.scheduleSetPaused({ name, paused: true }))) throw await this.unknownSchedule(name);
  }

  /**
   * Fires a paused schedule again, from its next tick after now; true when it was paused. A
   * schedule that is not paused is left as it is (false): its next run, a missed tick's included,
   * stays due.
   */
  async resumeSchedule(name: string): Promise<boolean> {
    this.assertUsable();
    checkScheduleName(name);
    const schedule = (await this.driver.scheduleList()).find((s) => s.name === name);
    if (!schedule) throw await this.unknownSchedule(name);
    if (!schedule.paused) return false;
    const next = cronTicks(schedule.cron, schedule.timeZone, `schedule ${JSON.stringify(name)}`).next(await this.driver.clockNow());
    if (!(await this.driver.scheduleSetPaused({ name, paused: false, nextRunAtMs: next }))) throw await this.unknownSchedule(name);
    return true;
  }

  async deleteSchedule(name: string): Promise<void> {
    this.assertUsable();
    checkScheduleName(name);
    if (!(await this.driver.scheduleDelete({ name }))) throw await this.unknownSchedule(name);
  }

  private async unknownSchedule(name: string): Promise<Error> {
    const names = (await this.driver.scheduleList()).map((s) => s.name);
    return new Error(`no schedule named ${JSON.stringify(name)}; ${names.length ? `schedules: ${names.join(", ")}` : "there are no schedules"}`);
  }

  /** What a succeeded task's run returned (undefined when nothing); TaskNotFoundError when there is no such task. */
  async getTaskResult(id: string): Promise<unknown> {
    this.assertUsable();
    const row = await this.driver.taskResultGet({ id: String(id) });
    if (!row) throw new TaskNotFoundError(String(id));
    if (row.state !== "succeeded") throw new Error(`task ${id} has no result: it is ${row.state}`);
    return decodeTaskResult(row.result);
  }

  async startContinuation(request: StartRequest, after: readonly string[], when: ContinuationCondition, transaction: unknown): Promise<TaskHandle> {
    this.assertUsable();
    if (request.options.delay !== undefined) {
      throw new TaskStartError("Task.continueWith: a continuation starts when its predecessors end; runAt, delayMs and delay do not apply");
    }
    if (request.options.dedupKey !== undefined) {
      // A key held by another task would make this call return that task and tie it to these
      // predecessors (and cancel it should they fail): a continuation is its own task.
      throw new TaskStartError("Task.continueWith: a continuation cannot take a dedupKey; deduplicate the tasks it follows instead");
    }
    const row = this.insertParams(request);
    const tx = transaction as DriverTransaction | undefined;
    if (tx !== undefined && tx.driver !== this.driver) {
      throw new TaskStartError("the transaction in scope belongs to another runtime's store; start the task with that runtime");
    }
    const id = await withEnqueueSpan([row.name], (traceContext) =>
      this.driver.taskInsertContinuation(traceContext ? { ...row, traceContext } : row, { taskIds: after, onlyOnSuccess: when === "succeeded" }, tx),
    );
    this.metrics.taskEnqueued(row.name);
    // The predecessors may have ended already. And one may be ending now: on PostgreSQL, a
    // completion whose statement began before this insert committed does not see the new edge
    // (it reports no continuations) and may commit after the look below. A second look shortly
    // after catches that; the maintenance leader's pass (every second) stays the last resort.
    this.resolveContinuationsSoon();
    this.resolveContinuationsAgain();
    return this.handle(id);
  }

  /**
   * Dead letters: queues ended tasks again at once (dead ones by default), all that match the
   * filter, in batches. Returns how many. One task: `retryTask(id)`.
   */
  async requeueTasks(filter: Omit<TaskRetryFilter, "limit"> = {}): Promise<number> {
    this.assertUsable();
    // Spread below: a string or an array would spread into an empty filter, matching every task.
    if (filter === null || typeof filter !== "object" || Array.isArray(filter)) throw new TypeError(`the retry filter must be an object, got ${filter === null ? "null" : Array.isArray(filter) ? "an array" : typeof filter}`);
    let total = 0;
    for (;;) {
      const n = await this.driver.taskRetryMany({ ...filter, limit: 1_000 });
      total += n;
      if (n < 1_000) break;
    }
    if (total) this.worker?.wake();
    return total;
  }

  /** Counts per task name and state, and tasks ended per minute over the last `windowMs` (default 15 minutes). */
  taskStats(options: { windowMs?: number } = {}): Promise<TaskStats> {
    this.assertUsable();
    const windowMs = options.windowMs ?? 15 * 60_000;
    if (!Number.isInteger(windowMs) || windowMs < 60_000 || windowMs > MAX_STATS_WINDOW_MS) {
      throw new RangeError(`windowMs must be an integer from 60000 (a minute) to ${MAX_STATS_WINDOW_MS} (31 days), got ${String(options.windowMs)}`);
    }
    return this.driver.taskStats({ windowMs });
  }

  /**
   * One more look CONTINUATIONS_AGAIN_MS after the last continuation stored here (see
   * continueWith); each one's own first look covers the ones before it.
   */
  private resolveContinuationsAgain(): void {
    if (!this.continuer) return;
    if (this.continuationsAgain) clearTimeout(this.continuationsAgain);
    this.continuationsAgain = setTimeout(() => {
      this.continuationsAgain = null;
      this.resolveContinuationsSoon();
    }, CONTINUATIONS_AGAIN_MS);
    this.continuationsAgain.unref();
  }

  /** Once per turn of the event loop: start continuations of tasks that ended here. */
  private resolveContinuationsSoon(): void {
    if (this.continuationsSoon || !this.continuer) return;
    this.continuationsSoon = true;
    setImmediate(() => {
      this.continuationsSoon = false;
      if (this.state !== "started") return;
      this.continuer?.runOnce().catch((error: unknown) => this.logger.error({ err: error }, "starting continuations failed; the leader will retry"));
    });
  }

  /** Metrics, attempt spans and continuations from the worker's events. */
  private observe(event: WorkerEvent): void {
    if (event.type === "taskStarted") {
      this.metrics.attemptStarted(event.name, event.pickupLatencyMs ?? null);
      this.attemptSpans.started(event);
      return;
    }
    const outcome =
      event.type === "taskSucceeded"
        ? "succeeded"
        : event.type === "taskFailed"
          ? "failed"
          : event.type === "taskDead"
            ? "dead"
            : event.type === "taskDiscarded"
              ? "discarded"
              : "released";
    this.metrics.attemptEnded(event.name, outcome, event.durationMs ?? null);
    this.attemptSpans.ended(event, outcome, "error" in event ? event.error : undefined);
  }

  /**
   * Tasks the rescue ended dead (their last attempt's worker crashed, was killed or hung): told
   * as "taskDead" here, on the maintenance leader, since the node that ran them cannot. Counted
   * by no metric here: their attempts were this node's no more than anyone's.
   */
  private rescuedDead(tasks: readonly RescuedDeadTask[]): void {
    for (const task of tasks) {
      const event = {
        type: "taskDead" as const,
        taskId: task.id,
        name: task.name,
        attempt: task.attempt,
        error: { name: "LeaseExpiredError", message: task.message },
        retryDelayMs: null,
      };
      this.announce(event);
    }
  }

  private onWorkerEvent(event: WorkerEvent): void {
    try {
      this.observe(event);
    } catch (error) {
      // A tracer's or a metrics exporter's failure: the event's listeners still hear of it.
      this.logger.error({ err: error, event: event.type }, "recording a task event's metrics or trace failed");
    }
    this.announce(event);
  }

  /** Tells an attempt's event to the runtime's listeners, and an ended task's to those waiting for it. */
  private announce(event: WorkerEvent): void {
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

/**
 * After a continuation is stored, how long until the second look for predecessors that ended
 * meanwhile, ms: a completion that raced the insert has committed by then (it is one statement).
 */
const CONTINUATIONS_AGAIN_MS = 100;
/** How long stop() waits for the maintenance services, then for the store to close, ms. */
const STOP_WAIT_MS = 5_000;

function isolationOf(value: RuntimeConfig["isolation"]): Required<IsolationConfig> {
  const given: IsolationConfig = value === undefined ? {} : typeof value === "string" ? { mode: value } : value;
  if (typeof given !== "object" || given === null) throw new TypeError(`isolation must be "thread", "none" or an object, got ${String(value)}`);
  checkKnownKeys(given, ISOLATION_CONFIG_KEYS, "isolation");
  const mode = given.mode ?? "thread";
  if (mode !== "thread" && mode !== "none") throw new TypeError(`isolation.mode must be "thread" or "none", got ${JSON.stringify(mode)}`);
  // At most what a timer can wait (2^31 - 1 ms, about 24.8 days): a longer one fires at once.
  const count = (v: number | undefined, fallback: number, what: string, min: number, max = 2 ** 31 - 1): number => {
    const n = v ?? fallback;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new RangeError(`isolation.${what} must be an integer from ${min} to ${max}, got ${String(v)}`);
    }
    return n;
  };
  return {
    mode,
    memoryLimitMb: count(given.memoryLimitMb, 256, "memoryLimitMb", 16),
    abortGraceMs: count(given.abortGraceMs, 5_000, "abortGraceMs", 0),
    minThreads: count(given.minThreads, 2, "minThreads", 0),
    idleThreadMs: count(given.idleThreadMs, 30_000, "idleThreadMs", 1),
  };
}

/** Creates a runtime; call start() to migrate the store and begin working. */
/** Why a task with a user connection cannot be started on a store without a secret. */
export const NO_SECRET =
  "tasks with a user connection need a server secret on this store: set UNDERWAY_SECRET (the same on every node) or createRuntime({ secret })";

export function createRuntime(config: RuntimeConfig): Runtime {
  return new Runtime(config);
}

/**
 * What starting a task returns. Methods rather than arrow properties: one is made for every task
 * started, and loaders that keep function names (tsx) rename each arrow property on every call.
 * They use no `this`, so a destructured `wait` still works.
 */
function handleOf(runtime: Runtime, id: string): TaskHandle {
  return {
    id,
    get() {
      return runtime.getTask(id);
    },
    wait(options) {
      return runtime.waitForTask(id, options);
    },
    async result<T>(options?: { timeoutMs?: number; signal?: AbortSignal }) {
      await runtime.waitForTask(id, options);
      return (await runtime.getTaskResult(id)) as T;
    },
  };
}

/** The longest window of taskStats: 31 days of minutes. */
const MAX_STATS_WINDOW_MS = 31 * 24 * 60 * 60_000;

/** The maintenance settings, checked: every period one a timer can wait; null for none. */
function maintenanceOf(value: RuntimeConfig["maintenance"], logger: Logger): Exclude<RuntimeConfig["maintenance"], false | undefined> | null {
  if (value === false) return null;
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null) throw new TypeError(`maintenance must be an object or false, got ${JSON.stringify(value)}`);
  checkKnownKeys(value, MAINTENANCE_CONFIG_KEYS, "maintenance");
  if (value.rescueIntervalMs !== undefined) checkTimerMs(value.rescueIntervalMs, "maintenance.rescueIntervalMs");
  // The leader renews every third of its term.
  if (value.leaderTermMs !== undefined) checkTimerMs(value.leaderTermMs, "maintenance.leaderTermMs", 3);
  const scheduleIntervalMs = value.scheduleIntervalMs === undefined ? 1_000 : checkTimerMs(value.scheduleIntervalMs, "maintenance.scheduleIntervalMs");
  if (value.missedAfterMs !== undefined) {
    const missed = value.missedAfterMs;
    if (typeof missed !== "number" || !Number.isInteger(missed) || missed < 0 || missed > MAX_MISSED_AFTER_MS) {
      throw new RangeError(`maintenance.missedAfterMs must be a whole number of ms from 0 to ${MAX_MISSED_AFTER_MS} (366 days), got ${String(missed)}`);
    }
  }
  // A pass every scheduleIntervalMs sees a tick up to that late: any longer and healthy ticks count as missed.
  const missedAfterMs = value.missedAfterMs ?? 60_000;
  if (missedAfterMs < scheduleIntervalMs) {
    logger.warn(
      { missedAfterMs, scheduleIntervalMs },
      "maintenance.missedAfterMs is shorter than maintenance.scheduleIntervalMs: a tick seen late by a pass counts as missed, and a \"skip\" schedule skips it",
    );
  } else {
    // When the leader dies, no pass runs until another node takes over: its term runs out, and the
    // others try to take it a third of a term apart, so up to 4/3 of a term after its last renewal.
    const leaderTermMs = value.leaderTermMs ?? 15_000;
    const takeoverMs = leaderTermMs + Math.ceil(leaderTermMs / 3);
    if (missedAfterMs < takeoverMs + scheduleIntervalMs) {
      logger.warn(
        { missedAfterMs, leaderTermMs, scheduleIntervalMs, atLeastMs: takeoverMs + scheduleIntervalMs },
        "maintenance.missedAfterMs is shorter than a leader change may take (leaderTermMs and a third of it, plus scheduleIntervalMs): a tick that comes while a dead leader is replaced counts as missed, and a \"skip\" schedule skips it",
      );
    }
  }
  if (value.retention !== undefined && value.retention !== false && (typeof value.retention !== "object" || value.retention === null)) {
    throw new TypeError(`maintenance.retention must be an object or false, got ${JSON.stringify(value.retention)}`);
  }
  if (value.retention) checkKnownKeys(value.retention, RETENTION_KEYS, "maintenance.retention");
  return value;
}

const MAX_MISSED_AFTER_MS = 366 * 24 * 60 * 60 * 1000;

/** A grace period: whole milliseconds a timer can wait (Node fires a longer one at once). */
function checkGraceMs(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > TASK_LIMITS.maxTimeoutMs) {
    throw new RangeError(`${what} must be an integer of milliseconds from 0 to ${TASK_LIMITS.maxTimeoutMs}, got ${String(value)}`);
  }
}
