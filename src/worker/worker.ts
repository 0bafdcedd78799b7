import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { types } from "node:util";
import { decodeParameters, TaskDeserializationError } from "../codec/index.ts";
import type { ClaimedTask, RunOutcome, StorageDriver, TaskClaimParams } from "../store/driver.ts";
import type { AmbientScope } from "../tasks/ambient.ts";
import { describeThrown, storableText, type ThrownInfo } from "../tasks/error-info.ts";
import { LeaseLostError } from "../tasks/errors/lease-lost-error.ts";
import { TaskCanceledError } from "../tasks/errors/task-canceled-error.ts";
import { TaskInterruptedError } from "../tasks/errors/task-interrupted-error.ts";
import { TaskSecurityError } from "../tasks/errors/task-security-error.ts";
import { UnknownTaskError } from "../tasks/errors/unknown-task-error.ts";
import { UnrecoverableTaskError } from "../tasks/errors/unrecoverable-task-error.ts";
import type { Logger } from "../tasks/logger.ts";
import { backoffDelay, checkTimerMs, requiresUserConnection, TASK_DEFAULTS, type TaskRegistry } from "../tasks/registry.ts";
import type { Initiator, TaskContext, UserConnectionLike } from "../tasks/types.ts";
import { Completer } from "./completer.ts";
import { executeInProcess, withinAttempt } from "./executor.ts";
import { RunAbort } from "./run-abort.ts";
import { taskResultOf } from "../tasks/result.ts";
import type { IsolatedRun, ThreadPool } from "./isolation/pool.ts";
import { ThreadTaskError } from "./isolation/thread-task-error.ts";
import type { RegistryEntry } from "../tasks/registry.ts";

/** Rebuilds the user connection of a task's initiator when the task starts. */
export type UserConnectionFactory = (initiator: Initiator, task: { id: string; name: string }) => Promise<UserConnectionLike> | UserConnectionLike;

/** Something that happened to a task in this worker. */
export type WorkerEvent =
  | {
      readonly type: "taskStarted";
      readonly taskId: string;
      readonly name: string;
      readonly attempt: number;
      /** The task's queue; from when it was due to this claim, ms (database clock); its stored trace context. */
      readonly queue?: string;
      readonly pickupLatencyMs?: number | null;
      readonly traceContext?: string | null;
    }
  | { readonly type: "taskSucceeded"; readonly taskId: string; readonly name: string; readonly attempt: number; readonly durationMs: number }
  | {
      readonly type: "taskFailed" | "taskDead";
      readonly taskId: string;
      readonly name: string;
      readonly attempt: number;
      readonly error: ThrownInfo;
      readonly retryDelayMs: number | null;
      readonly durationMs?: number;
    }
  | { readonly type: "taskReleased"; readonly taskId: string; readonly name: string; readonly attempt: number; readonly durationMs?: number }
  /**
   * An attempt of this worker ended without its outcome counting: the task was canceled while it
   * ran, or its lease passed to another run. Its stored state is whoever's took over.
   */
  | {
      readonly type: "taskDiscarded";
      readonly taskId: string;
      readonly name: string;
      readonly attempt: number;
      /** Absent for an attempt that never started (canceled while it waited in a chain). */
      readonly durationMs?: number;
      readonly reason: "canceled" | "lease lost";
    };

export interface WorkerOptions {
  readonly driver: StorageDriver;
  readonly registry: TaskRegistry;
  readonly logger: Logger;
  /** This worker's id in the store. Default host:pid:random. */
  readonly workerId?: string;
  /** Tasks run at once. Default 10. */
  readonly concurrency?: number;
  /** Queues this worker takes tasks from; all queues when absent. */
  readonly queues?: readonly string[];
  /** How long a claim holds a task without a heartbeat, ms. Default 15,000. */
  readonly leaseMs?: number;
  /** Heartbeat period, ms. Default a third of the lease. */
  readonly heartbeatMs?: number;
  /** Fallback poll for work when no wake-up arrives, ms. Default 1,000. */
  readonly pollIntervalMs?: number;
  /** Most tasks claimed in one statement. Default min(concurrency, 100) + prefetch, at most 500. */
  readonly batchSize?: number;
  /**
   * Short tasks: claim up to this many more than the free slots, so a slot that frees starts its
   * next task at once instead of after a claim's round trip, and one claim's commit serves many
   * tasks. Held only while recent runs are short (under 50 ms on average) and for at most a
   * second (a third of the lease), then handed back; not used with queue caps or rate limits.
   * The depth starts at min(concurrency, 100) and grows by one with each short run up to this,
   * and never holds more than the slots run in half the hold at the recent pace. 0 turns it off.
   * Default 500.
   */
  readonly prefetch?: number;
  /** Per queue, the most tasks of that queue run at once here. */
  readonly queueConcurrency?: Readonly<Record<string, number>>;
  readonly userConnectionFactory?: UserConnectionFactory;
  /**
   * Checks a task's stored initiator against its signature (tamper protection): true when it
   * checks out, false when it does not (or there is none), null when this store has no secret to
   * check it with.
   */
  readonly verifyInitiator?: (task: ClaimedTask) => boolean | null;
  /** The ambient scope tasks run in (the runtime, so Task.startNew inside a task works). */
  readonly scope?: AmbientScope;
  readonly onEvent?: (event: WorkerEvent) => void;
  /** Tasks ended here may have continuations to start (the store says so, or cannot tell). */
  readonly onContinuations?: () => void;
  /**
   * Where task code runs: in the pool's threads ("thread"), or on this event loop ("none"). A
   * class's own taskOptions.isolation wins. Default: on this event loop (no pool).
   */
  readonly isolation?: { readonly pool: ThreadPool | null; readonly mode: "thread" | "none"; readonly abortGraceMs: number };
  /** Deterministic jitter for tests. */
  readonly random?: () => number;
}

/** An outcome with what the events tell about it. */
/** durationMs: how long the attempt ran; null for one that never started (handed back from the worker's hold, or from its chain). */
type WorkerOutcome = RunOutcome & { readonly name: string; readonly attempt: number; readonly durationMs: number | null };

/** Attempts run one after another in a thread, taking one slot between them (see ThreadPool.runChain). */
interface Chain {
  /** Its attempts that have not ended. */
  left: number;
  /** Its attempts that have not started. */
  readonly waiting: Set<ActiveRun>;
  /** Hands back those still waiting when their hold ends (see prefetchHoldMs). */
  holdTimer: NodeJS.Timeout | null;
}

/** A task claimed ahead of a free slot: when it came, and when its claim was sent. */
interface Held {
  readonly task: ClaimedTask;
  readonly at: number;
  readonly leasedAt: number;
}

interface ActiveRun {
  readonly task: ClaimedTask;
  /** Aborting it stops the attempt (cancel, lost lease, shutdown); its signal is made only if the task asks. */
  readonly abort: RunAbort;
  /** When it started (a chained attempt: when its thread reported it started; null until then). */
  startedAt: number | null;
  /**
   * From when its lease surely runs, on this process's clock: when the claim that brought it was
   * sent, then when the last heartbeat the store confirmed was sent (see heartbeat's fencing).
   */
  leasedAt: number;
  /** The chain it runs in, or null. */
  readonly chain: Chain | null;
  /** Set when the run's result must not be written, and why: canceled, lease lost, or released at shutdown (its "released" outcome already added). */
  discarded: false | "canceled" | "lease lost" | "released";
  /** Its thread has not answered for a second: it holds no slot meanwhile. */
  blocked: boolean;
  done: Promise<void>;
  progressTimer: NodeJS.Timeout | null;
  latestProgress: { fraction: number; text: string | null } | null;
}

const PROGRESS_INTERVAL_MS = 250;
/** Prefetch only while recent runs take less than this on average, ms. */
const PREFETCH_RUN_MS = 50;
/** A prefetched task not started within this is handed back, ms (at most a third of the lease). */
const PREFETCH_HOLD_MS = 1_000;
/** The default prefetch, and the most tasks one claim takes by default. */
const MAX_DEFAULT_CLAIM = 500;
/**
 * Outcomes not yet stored, per task one claim may take, at which the worker claims no more: runs
 * that end faster than the store records them would otherwise pile up outcomes (each one a task
 * that runs again should this process die) and make every write slower.
 */
const BACKLOG_PER_CLAIM = 2;
/** How long a claim waits for more slots to free while most are busy. */
const CLAIM_COALESCE_MS = 1;
/**
 * Attempts of a tiny isolated class in flight in threads that the worker aims for: at
 * concurrency c, a slot that frees takes a chain of CHAIN_IN_FLIGHT / c held tasks of one class
 * (at most MAX_CHAIN; none from concurrency 257 on), which its thread runs one after another (see
 * ThreadPool.runChain). The thread then still has attempts to run while the worker's thread
 * writes outcomes and claims (a claim of 500 on SQLite holds it for about 4 ms), instead of each
 * waiting for the other: with 128 rather than 32, drains of no-op tasks at concurrency 1 and 10
 * ran 8-16% faster; with 512 rather than 128, at concurrency 10 and 50 (chains of 51 and 10
 * instead of 12 and 2), 4-23% faster in a script's SQLite drains (PostgreSQL, bound by its server, within the
 * noise). The pool's SHARE_MAX_TINY is as large, so that these chains fit one thread.
 */
const CHAIN_IN_FLIGHT = 512;
/**
 * The longest chain. With chains of up to 512 at concurrency 1 too, PostgreSQL's drain-c1 read
 * slower in 4 of 4 benchmark pairs (medians 29,978 -> 27,395 tasks/s) and a script's no faster;
 * why is not measured.
 */
const MAX_CHAIN = 128;

/**
 * The claim loop: takes due tasks from the store while it has free slots, runs them, and hands
 * their outcomes to the completer. Woken at once by local starts and by the store's
 * notifications; polls only as a fallback.
 */
export class Worker {
  readonly id: string;
  private readonly driver: StorageDriver;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly active = new Map<string, ActiveRun>();
  /** Runs whose thread has not answered for a second: they no longer hold a slot (see slotsTaken). */
  private blockedRuns = 0;
  /** Claimed ahead of free slots (see prefetch), oldest first, with when, and when their claim was sent (see ActiveRun.leasedAt). */
  private readonly prefetched: Held[] = [];
  private readonly prefetch: number;
  private readonly prefetchHoldMs: number;
  /** The prefetch depth to start from, and runs that ended short since runs were last long (the depth grows with them). */
  private readonly prefetchStart: number;
  private shortRuns = 0;
  /**
   * Tasks held ahead were handed back because no slot freed during their hold (long runs, or new
   * ones whose times are not known yet): none is held ahead until a run ends. Otherwise the same
   * tasks would be claimed, held and handed back again every hold, hidden from the other workers
   * most of the time.
   */
  private slotsHeldLong = false;
  /** Average run time of recent runs, ms. */
  private recentRunMs = 0;
  /** Attempts of chains beyond the one slot each chain takes (see beginChain). */
  private chainExtra = 0;
  /** How much of recentRunMs is measured (an average from 0: 1/16 after one run, near 1 after fifty). */
  private recentWeight = 0;
  private readonly completer: Completer<WorkerOutcome>;
  private running = false;
  private stopping = false;
  private filling = false;
  private wakeAgain = false;
  private wakeScheduled = false;
  /**
   * The store may hold due tasks this worker has not claimed. Cleared when a claim of all its queues
   * came back with fewer than it asked for (a wake-up while it was on its way claims again): a slot
   * that frees then has nothing to claim, and claims only after the next wake-up (a new task's
   * notification, a due time, the poll). Without it each run's end and each write of outcomes
   * claimed again, found nothing, and looked up the next due time: 3 claims per task, not 1.
   */
  private maybeDue = true;
  private pollTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private nextRunTimer: NodeJS.Timeout | null = null;
  private claimTimer: NodeJS.Timeout | null = null;
  /** Hands back prefetched tasks whose hold has ended. */
  private prefetchTimer: NodeJS.Timeout | null = null;
  /** The deferred claim has waited its moment: the next look claims whatever is free. */
  private coalesced = false;
  private unsubscribeWake: (() => void) | null = null;
  private claimFailures = 0;
  /** The claim loop under way, so stop() can wait for a claim in flight. */
  private fillDone: Promise<void> = Promise.resolve();
  /** Slots promised to starts being stored (see reserveStart), and stop()'s wait for them. */
  private reserved = 0;
  private reservationWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WorkerOptions) {
    this.driver = options.driver;
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    this.concurrency = positive(options.concurrency ?? 10, "worker concurrency");
    this.leaseMs = checkTimerMs(options.leaseMs ?? 15_000, "worker leaseMs");
    this.heartbeatMs = checkTimerMs(options.heartbeatMs ?? Math.max(1, Math.floor(this.leaseMs / 3)), "worker heartbeatMs");
    this.pollIntervalMs = checkTimerMs(options.pollIntervalMs ?? 1_000, "worker pollIntervalMs");
    for (const [queue, cap] of Object.entries(options.queueConcurrency ?? {})) positive(cap, `worker queueConcurrency.${queue}`);
    const base = Math.min(this.concurrency, 100);
    const prefetch = options.prefetch ?? MAX_DEFAULT_CLAIM;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new RangeError(`worker prefetch must be a whole number >= 0, got ${String(options.prefetch)}`);
    this.prefetch = prefetch;
    this.batchSize = positive(options.batchSize ?? Math.min(base + prefetch, Math.max(base, MAX_DEFAULT_CLAIM)), "worker batchSize");
    this.prefetchStart = Math.min(prefetch, base);
    this.prefetchHoldMs = Math.min(PREFETCH_HOLD_MS, this.leaseMs / 3);
    if (this.heartbeatMs >= this.leaseMs) {
      throw new RangeError(`worker heartbeatMs (${this.heartbeatMs}) must be shorter than leaseMs (${this.leaseMs})`);
    }
    this.completer = new Completer(
      this.driver,
      (outcomes, rejected, continuations) => this.written(outcomes, rejected, continuations),
      (error, outcomes) =>
        this.options.logger.error({ err: error, count: outcomes.length }, "recording task outcomes failed; retrying"),
      // A claim's worth: claims wait once twice that is not stored (see BACKLOG_PER_CLAIM).
      this.batchSize,
    );
  }

  get activeCount(): number {
    return this.active.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.unsubscribeWake = this.driver.onWake(() => this.wake());
    this.pollTimer = setInterval(() => this.wake(), this.pollIntervalMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    // The poll keeps the process alive while the worker runs, whatever the store (PostgreSQL's
    // LISTEN connection would, SQLite's file watch does not) and the isolation (idle threads
    // would): a worker process ends when it is stopped, not when it is idle.
    this.heartbeatTimer.unref();
    this.wake();
  }

  /**
   * Looks for work now (coalesced: many calls in one turn make one look): the store may hold due
   * tasks (a notification, a due time, the poll, a task handed back).
   */
  wake(): void {
    this.maybeDue = true;
    this.look();
  }

  /** A slot freed, or outcomes were stored: looks for work only if the store may have some. */
  private slotFreed(): void {
    if (this.maybeDue) this.look();
  }

  private look(): void {
    if (!this.running || this.stopping) return;
    if (this.filling) {
      this.wakeAgain = true;
      return;
    }
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.fillDone = this.fill().catch((error: unknown) => {
        // fill() handles the store's failures itself; anything else is a bug of ours, and it
        // must not take the process down: the poll timer looks again.
        this.options.logger.error({ err: error }, "the claim loop failed; it will run again at the next wake-up");
      });
    });
  }

  private async fill(): Promise<void> {
    if (this.filling || !this.running || this.stopping) return;
    this.filling = true;
    try {
      do {
        this.wakeAgain = false;
        while (this.running && !this.stopping) {
          this.startPrefetched();
          const free = this.concurrency - this.slotsTaken();
          // The store is behind with the outcomes: claim again once it has caught up (see written).
          if (this.completer.backlog >= BACKLOG_PER_CLAIM * this.batchSize) break;
          const depth = this.prefetchWanted();
          const ahead = depth - this.prefetched.length;
          // Slots are full: claim again once the tasks held ahead are down to half the depth.
          if (free <= 0 && ahead < Math.max(1, depth / 2)) break;
          // Runs end one at a time (in threads, each with its own message): rather than one claim per
          // freed slot, wait a moment for more slots while most are busy, and claim them together.
          if (free + ahead < Math.min(this.batchSize, this.concurrency) / 2 && this.active.size > 0 && !this.coalesced) {
            this.deferClaim();
            break;
          }
          this.coalesced = false;
          const want = Math.min(Math.max(0, free) + Math.max(0, ahead), this.batchSize);
          let claimed: ClaimedTask[];
          let more: boolean;
          let exhausted: boolean;
          const sentAt = performance.now();
          try {
            ({ claimed, more, exhausted } = await this.claimRound(want));
            this.claimFailures = 0;
          } catch (error) {
            this.claimFailures++;
            if (this.claimFailures === 1 || this.claimFailures % 30 === 0) {
              this.options.logger.error({ err: error, failures: this.claimFailures }, "claiming tasks failed; will retry");
            }
            return;
          }
          if (this.stopping) {
            // Stopped while the claim was on its way: hand the tasks straight back.
            for (const task of claimed) this.giveBack(task);
            break;
          }
          const at = performance.now();
          // Of capped queues, the tasks held ahead and those this claim brought so far.
          const brought = new Map<string, number>();
          if (this.options.queueConcurrency) {
            for (const { task } of this.prefetched) if (this.options.queueConcurrency[task.queue] !== undefined) brought.set(task.queue, (brought.get(task.queue) ?? 0) + 1);
          }
          for (const task of claimed) {
            const cap = this.options.queueConcurrency?.[task.queue];
            const before = brought.get(task.queue) ?? 0;
            // A capped queue filled up meanwhile (a rate-limited claim is not filtered by room): give it back.
            if (cap !== undefined && this.runningIn(task.queue) + before >= cap) {
              this.giveBack(task);
              continue;
            }
            if (cap !== undefined) brought.set(task.queue, before + 1);
            // Behind any held ahead (a task handed over while this claim was on its way, say),
            // started in the free slots at once (chained, see beginChain, where they may be).
            this.prefetched.push({ task, at, leasedAt: sentAt });
          }
          this.startPrefetched();
          if (!more) {
            if (exhausted) this.maybeDue = false;
            await this.scheduleNextDue();
            break;
          }
        }
      } while (this.wakeAgain && this.running && !this.stopping);
    } finally {
      this.filling = false;
    }
  }

  /**
   * Slots in use: every run, but those blocked in a thread for a second (a runaway, or CPU work
   * that does not yield), at most `concurrency` of them: such a run is paused while others work
   * and keeps running until it answers again, ends or meets its timeout, but it does not keep
   * other tasks waiting.
   */
  private slotsTaken(): number {
    return this.active.size - this.chainExtra - this.blockedRuns + this.reserved;
  }

  /**
   * A slot for a task this process is starting, so that the store hands the task over as it
   * stores it (StorageDriver.taskInsertClaimed) rather than this worker claiming it after: a round
   * trip less between a start and its run. null when this worker would not take the task now:
   * stopping, no free slot, tasks held ahead, outcomes behind, the task's queue not among its
   * queues or capped here, its class rate-limited. The caller settles the reservation once, with
   * the task the store handed over or null.
   */
  reserveStart(task: { readonly queue: string; readonly name: string }): StartReservation | null {
    if (!this.running || this.stopping) return null;
    // A claim on its way may bring tasks due before this one: they go first, so no hand-off.
    if (this.filling || this.prefetched.length > 0 || this.slotsTaken() >= this.concurrency) return null;
    if (this.completer.backlog >= BACKLOG_PER_CLAIM * this.batchSize) return null;
    if (this.options.queues && !this.options.queues.includes(task.queue)) return null;
    if (this.options.queueConcurrency?.[task.queue] !== undefined) return null;
    if (this.options.registry.rateLimited().some((limited) => limited.name === task.name)) return null;
    this.reserved++;
    return new Reservation(this, this.id, this.leaseMs, performance.now());
  }

  /**
   * A reservation's end. A task handed over joins the tasks held ahead, behind any already there;
   * held there, a cancel or a stop finds it as it finds those (see abortTask). With none ahead, a
   * task whose class runs in a thread begins at once: its thread wakes while the start returns to
   * its caller. Any other starts on the next turn, once the start that stored it has returned (as
   * a claimed one would): a run on this thread never begins inside its starter's call.
   */
  settleStart(claimed: ClaimedTask | null, reservedAt: number = performance.now()): void {
    this.unreserve();
    if (!claimed) {
      this.wake();
      return;
    }
    if (!this.running || this.stopping) {
      this.giveBack(claimed);
      return;
    }
    this.prefetched.push({ task: claimed, at: performance.now(), leasedAt: reservedAt });
    if (this.prefetched.length === 1 && this.runsInThread(claimed.name)) this.startPrefetched();
    else setImmediate(() => this.startPrefetched());
  }

  /** Whether the attempts of task type `name`, registered here, run in a thread. */
  private runsInThread(name: string): boolean {
    const entry = this.options.registry.resolveRegistered(name);
    return entry !== null && entry !== undefined && this.inThread(entry);
  }

  private unreserve(): void {
    this.reserved--;
    if (this.reserved === 0) for (const resolve of this.reservationWaiters.splice(0)) resolve();
  }

  /** From the thread pool: the run's thread stopped answering for a second, or answers again. */
  private runBlocked(run: ActiveRun, blocked: boolean): void {
    if (blocked && !run.blocked && this.blockedRuns < this.concurrency && this.active.has(runKey(run.task))) {
      run.blocked = true;
      this.blockedRuns++;
      this.slotFreed();
    } else if (!blocked && run.blocked) {
      run.blocked = false;
      this.blockedRuns--;
    }
  }

  /**
   * How many tasks to hold ahead now: none unless runs are short and nothing caps or limits
   * claims; from min(concurrency, 100), one more for each run that ended short, up to `prefetch`
   * (a deep local queue is for tasks that proved short: long ones would be handed back), and no
   * more than the slots run in half the hold at the recent pace: a held task starts well within
   * its hold. At concurrency 1, 500 tasks of 0.05 ms are held, 12 of 40 ms; each claim's commit
   * then serves hundreds of short tasks, not a few.
   */
  private prefetchWanted(): number {
    if (this.prefetch === 0 || this.recentRunMs >= PREFETCH_RUN_MS || this.slotsHeldLong) return 0;
    if (this.options.queueConcurrency && Object.keys(this.options.queueConcurrency).length > 0) return 0;
    if (this.options.registry.rateLimited().length > 0) return 0;
    // The pace as measured (the average corrected for its start at 0).
    const pace = this.recentWeight > 0 ? this.recentRunMs / this.recentWeight : 0;
    const paced = Math.max(1, Math.floor((this.concurrency * this.prefetchHoldMs) / 2 / Math.max(pace, 0.001)));
    return Math.min(this.prefetch, this.prefetchStart + this.shortRuns, paced);
  }

  /**
   * Starts prefetched tasks in free slots. With `expire` (the hold's own timer, see
   * expirePrefetchedLater), hands back those held too long; otherwise they wait for that timer,
   * which runs once the slots freed meanwhile are known.
   */
  private startPrefetched(expire = false): void {
    const now = performance.now();
    while (this.prefetched.length > 0) {
      const first = this.prefetched[0]!;
      const free = this.slotsTaken() < this.concurrency;
      // Held its time: handed back, unless a slot is free while its lease is still young.
      const held = now - first.at;
      if (this.stopping || (held >= this.prefetchHoldMs && ((expire && !free) || held >= this.leaseMs / 2))) {
        this.prefetched.shift();
        this.giveBack(first.task);
        // No slot freed for a whole hold: hold none ahead until one does (see prefetchWanted).
        if (!this.stopping) this.slotsHeldLong = true;
        continue;
      }
      if (!free) break;
      this.prefetched.shift();
      if (!this.beginChain(first, now)) this.begin(first.task, first.leasedAt);
    }
    if (this.prefetched.length > 0) this.expirePrefetchedLater();
  }

  /**
   * Begins `first` with the held tasks of its class behind it as a chain, in one slot, when its
   * class runs isolated and has proven tiny, concurrency is low (see CHAIN_IN_FLIGHT), and more
   * tasks are held than slots are free: its thread runs them one after another and reports each
   * one's start. False, with nothing done, when they do not chain.
   */
  private beginChain(head: Held, now: number): boolean {
    const first = head.task;
    const pool = this.options.isolation?.pool;
    // No longer than the held tasks spread over the free slots: a task a free slot could run
    // beside the others does not wait in a chain.
    const free = Math.max(1, this.concurrency - this.slotsTaken());
    const length = Math.min(MAX_CHAIN, Math.floor(CHAIN_IN_FLIGHT / this.concurrency), Math.ceil((this.prefetched.length + 1) / free));
    if (!pool || length < 2 || first.withUserConnection || !isBytes(first) || this.prefetched[0]?.task.name !== first.name) return false;
    const entry = this.options.registry.resolveRegistered(first.name);
    // A class that needs a user connection, its rows saying otherwise, goes through executeWith's check.
    if (!entry || !this.inThread(entry) || (!entry.dynamic && !entry.module) || requiresUserConnection(entry.taskClass)) return false;
    if (!pool.chainable(first.name, entry.options.memoryLimitMb)) return false;
    const tasks = [head];
    for (const held of this.prefetched) {
      if (tasks.length >= length || held.task.name !== first.name || held.task.withUserConnection || !isBytes(held.task) || now - held.at >= this.prefetchHoldMs) {
        break;
      }
      tasks.push(held);
    }
    if (tasks.length < 2) return false;
    const chain: Chain = { left: tasks.length, waiting: new Set(), holdTimer: null };
    const runs = tasks.map((held, i) => this.newRun(held.task, held.leasedAt, chain, i === 0));
    for (const run of runs.slice(1)) chain.waiting.add(run);
    const placed = pool.runChain(
      runs.map((run, i) => this.isolatedRun(run, entry, new RunLogger(this.options.logger, run.task), i === 0 ? undefined : () => this.chainedStart(run))),
    );
    if (!placed) return false;
    this.prefetched.splice(0, tasks.length - 1);
    this.chainExtra += tasks.length - 1;
    // Held no longer than a task held ahead (behind an attempt that runs long, say): those still
    // waiting then are handed back (their thread skips them), to run here or elsewhere.
    chain.holdTimer = setTimeout(() => {
      chain.holdTimer = null;
      this.handBackWaiting(chain, "it waited its hold behind its chain");
    }, this.prefetchHoldMs);
    chain.holdTimer.unref();
    runs.forEach((run, i) => {
      this.active.set(runKey(run.task), run);
      if (i === 0) this.started(run);
      run.done = this.isolatedOutcome(run, entry, placed[i]!).then(
        (outcome) => this.end(run, outcome),
        (error: unknown) => this.internalError(run, error),
      );
    });
    return true;
  }

  /** A chained attempt's thread reported it started. */
  private chainedStart(run: ActiveRun): void {
    run.startedAt = performance.now();
    const chain = run.chain;
    if (chain?.waiting.delete(run) && chain.waiting.size === 0 && chain.holdTimer) {
      clearTimeout(chain.holdTimer);
      chain.holdTimer = null;
    }
    if (!run.discarded && this.active.has(runKey(run.task))) this.started(run);
  }

  /** Aborts a chain's attempts that have not started: their thread skips them, and they are released. */
  private handBackWaiting(chain: Chain, why: string): void {
    for (const run of [...chain.waiting]) run.abort.abort(new TaskInterruptedError(`${why}; the task will run again`));
    chain.waiting.clear();
    if (chain.holdTimer) clearTimeout(chain.holdTimer);
    chain.holdTimer = null;
  }

  /** Looks again when the oldest prefetched task's hold ends. */
  private expirePrefetchedLater(): void {
    if (this.prefetchTimer) return;
    const first = this.prefetched[0];
    if (!first) return;
    const timer = setTimeout(() => {
      // Decided after the event loop has read what came in meanwhile: timers run first in a turn,
      // and after a stall of this thread the runs' ends (their threads' messages) may wait unread
      // behind this one, which would then see every slot taken and hand the tasks back.
      setImmediate(() => {
        // Cleared by stop() meanwhile.
        if (this.prefetchTimer !== timer) return;
        this.prefetchTimer = null;
        this.startPrefetched(true);
        this.wake();
      });
    }, Math.max(1, this.prefetchHoldMs - (performance.now() - first.at)));
    timer.unref();
    this.prefetchTimer = timer;
  }

  private runningIn(queue: string): number {
    let n = 0;
    for (const run of this.active.values()) if (run.task.queue === queue) n++;
    return n;
  }

  private queueFull(queue: string): boolean {
    const cap = this.options.queueConcurrency?.[queue];
    return cap !== undefined && this.runningIn(queue) >= cap;
  }

  /**
   * One round of claims for up to `want` tasks: rate-limited classes each under their limit, then
   * everything else, leaving out queues at their cap here. `more`: there may be more due work now.
   */
  private async claimRound(want: number): Promise<{ claimed: ClaimedTask[]; more: boolean; exhausted: boolean }> {
    const base = { workerId: this.id, leaseMs: this.leaseMs, ...(this.options.queues ? { queues: this.options.queues } : {}) };
    const caps = this.options.queueConcurrency ?? {};
    const capped = Object.keys(caps);
    const limited = this.options.registry.rateLimited();
    if (capped.length === 0 && limited.length === 0) {
      const claimed = await this.driver.taskClaim({ ...base, limit: want });
      return { claimed, more: claimed.length === want, exhausted: claimed.length < want };
    }
    const claimed: ClaimedTask[] = [];
    try {
      return await this.claimEach(want, base, caps, capped, limited, claimed);
    } catch (error) {
      // The claims made before the one that failed hold their tasks: those run now, or they
      // would sit leased to this worker until their leases ran out and be counted as lost.
      if (claimed.length === 0) throw error;
      this.options.logger.error({ err: error, claimed: claimed.length }, "claiming tasks failed part way; running those already claimed");
      return { claimed, more: false, exhausted: false };
    }
  }

  /** claimRound's several claims, each adding to `claimed` as it returns. */
  private async claimEach(
    want: number,
    base: Omit<TaskClaimParams, "limit">,
    caps: Readonly<Record<string, number>>,
    capped: readonly string[],
    limited: ReturnType<TaskRegistry["rateLimited"]>,
    claimed: ClaimedTask[],
  ): Promise<{ claimed: ClaimedTask[]; more: boolean; exhausted: boolean }> {
    const full = capped.filter((q) => this.queueFull(q));
    const limitedNames = limited.length ? { excludeNames: limited.map((l) => l.name) } : {};
    let more = false;
    for (const l of limited) {
      if (claimed.length >= want) break;
      claimed.push(
        ...(await this.driver.taskClaim({
          ...base,
          ...(full.length ? { excludeQueues: full } : {}),
          names: [l.name],
          rate: { limit: l.limit, intervalMs: l.intervalMs },
          limit: want - claimed.length,
        })),
      );
    }
    // Each capped queue with room, up to its room; then every other queue.
    for (const queue of capped) {
      if (full.includes(queue) || (this.options.queues && !this.options.queues.includes(queue))) continue;
      const limit = Math.min((caps[queue] ?? 0) - this.runningIn(queue), want - claimed.length);
      if (limit <= 0) continue;
      const got = await this.driver.taskClaim({ ...base, ...limitedNames, queues: [queue], limit });
      claimed.push(...got);
      if (got.length === limit) more = true;
    }
    const limit = want - claimed.length;
    if (limit > 0) {
      const rest = await this.driver.taskClaim({ ...base, ...limitedNames, ...(capped.length ? { excludeQueues: capped } : {}), limit });
      claimed.push(...rest);
      if (rest.length === limit) more = true;
    } else {
      more = true;
    }
    // Rate-limited classes and capped queues may leave due tasks behind a short claim: each slot
    // that frees looks again, as a window or a queue's room may have opened.
    return { claimed, more, exhausted: false };
  }

  /** Claims again in a millisecond, whatever frees up meanwhile, once. */
  private deferClaim(): void {
    if (this.claimTimer) return;
    this.claimTimer = setTimeout(() => {
      this.claimTimer = null;
      this.coalesced = true;
      this.slotFreed();
    }, CLAIM_COALESCE_MS);
    this.claimTimer.unref();
  }

  /** Nothing more is due: wake when the earliest delayed task becomes due (poll bounds it anyway). */
  private async scheduleNextDue(): Promise<void> {
    if (this.nextRunTimer) return;
    let next: number | null;
    let now: number;
    try {
      next = await this.driver.taskNextRunAt(this.options.queues ? { queues: this.options.queues } : {});
      if (next === null) return;
      now = await this.driver.clockNow();
    } catch {
      return; // the poll timer looks again
    }
    const inMs = next - now;
    if (inMs >= this.pollIntervalMs) return;
    this.nextRunTimer = setTimeout(() => {
      this.nextRunTimer = null;
      this.wake();
    }, Math.max(0, inMs) + 1);
    this.nextRunTimer.unref();
  }

  /** Hands back a task held ahead that never started: no attempt ran, so none is timed. */
  private giveBack(task: ClaimedTask): void {
    this.completer.add({ kind: "released", id: task.id, runSeq: task.runSeq, name: task.name, attempt: task.attempt, durationMs: null });
  }

  /** A run that starts now, or (started false) waits in a chain until its thread starts it. */
  private newRun(task: ClaimedTask, leasedAt: number, chain: Chain | null, started = true): ActiveRun {
    return {
      task,
      abort: new RunAbort(),
      startedAt: started ? performance.now() : null,
      leasedAt,
      chain,
      discarded: false,
      blocked: false,
      done: Promise.resolve(),
      progressTimer: null,
      latestProgress: null,
    };
  }

  /** Tells the worker's listener (the runtime's metrics, traces and events); what it throws is logged, never the worker's. */
  private emit(event: WorkerEvent): void {
    const on = this.options.onEvent;
    if (!on) return;
    try {
      on(event);
    } catch (error) {
      this.options.logger.error({ err: error, event: event.type, taskId: event.taskId }, "a worker event listener threw");
    }
  }

  private started(run: ActiveRun): void {
    const { task } = run;
    this.emit({
      type: "taskStarted",
      taskId: task.id,
      name: task.name,
      attempt: task.attempt,
      queue: task.queue,
      pickupLatencyMs: task.claimedAtMs !== undefined && task.runAtMs !== undefined ? task.claimedAtMs - task.runAtMs : null,
      traceContext: task.traceContext ?? null,
    });
  }

  /** execute() catches everything a task does; this is a bug of ours. Keep the worker alive. */
  private internalError(run: ActiveRun, error: unknown): void {
    this.options.logger.error({ err: error, ...taskLogFields(run.task) }, "internal error while running a task");
    this.end(run, this.failure(run, error, null));
  }

  private begin(task: ClaimedTask, leasedAt: number): void {
    const run = this.newRun(task, leasedAt, null);
    this.active.set(runKey(task), run);
    this.started(run);
    let running: Promise<RunOutcome>;
    try {
      // Not an async function: what it throws before its first promise is thrown here.
      running = this.execute(run);
    } catch (error) {
      running = Promise.reject(error as Error);
    }
    run.done = running.then(
      (outcome) => this.end(run, outcome),
      (error: unknown) => this.internalError(run, error),
    );
  }

  private execute(run: ActiveRun): Promise<RunOutcome> {
    const { registry } = this.options;
    // A registered class: no promise to wait for (one less turn per attempt).
    const registered = registry.resolveRegistered(run.task.name);
    if (registered !== null) return this.executeWith(run, registered);
    return withinAttempt(registry.resolveForRun(run.task.name), run.abort, run.task.timeoutMs).then(
      (entry) => this.executeWith(run, entry),
      (error: unknown) => this.failure(run, error, "default"),
    );
  }

  private executeWith(run: ActiveRun, entry: RegistryEntry | undefined): Promise<RunOutcome> {
    // Every start of a class that needs a user connection stores the task with one: a row that
    // says otherwise was changed outside underway (or the class gained setUserConnection after
    // the task was queued), and running it would skip the initiator's integrity check.
    if (entry && !run.task.withUserConnection && requiresUserConnection(entry.taskClass)) {
      const error = new TaskSecurityError(
        `the task's class ${run.task.name} needs a user connection (it has setUserConnection), but the task is stored without one: ` +
          "its row was changed outside underway, or the task was queued before the class needed one",
      );
      return Promise.resolve(this.failure(run, error, null));
    }
    const logger = new RunLogger(this.options.logger, run.task);
    // An isolated attempt's parameters are decoded in its thread, within its limits; only its
    // thread holds them.
    if (entry && this.inThread(entry)) {
      return this.executeIsolated(run, entry, logger);
    }
    return this.executeHere(run, entry, logger);
  }

  /** Whether the class's attempts run in a thread: its own option, else the worker's. */
  private inThread(entry: RegistryEntry): boolean {
    return (entry.options.isolation ?? this.options.isolation?.mode ?? "none") === "thread";
  }

  /** Runs the attempt on this event loop. */
  private async executeHere(run: ActiveRun, entry: RegistryEntry | undefined, logger: Logger): Promise<RunOutcome> {
    const { task } = run;
    let parameters: unknown;
    try {
      parameters = decodeParameters(task.parameters);
    } catch (error) {
      // Bytes that cannot be decoded never will be: no retry.
      return this.failure(run, error, null);
    }
    if (!entry) {
      return this.failure(run, new UnknownTaskError(task.name, this.options.registry.names()), "default");
    }
    let userConnection: UserConnectionLike | null = null;
    if (task.withUserConnection) {
      const factory = this.options.userConnectionFactory;
      try {
        this.checkInitiator(task);
        if (!task.initiator) throw new TaskSecurityError("the task needs a user connection but has no initiator");
        if (!factory) {
          throw new Error("this runtime has no UserConnection factory: pass userConnectionFactory to createRuntime");
        }
        userConnection = await withinAttempt(Promise.resolve(factory(task.initiator, { id: task.id, name: task.name })), run.abort, task.timeoutMs);
      } catch (error) {
        return this.failure(run, error, entry.options.backoff);
      }
    }
    const { abort } = run;
    const context: TaskContext = {
      get signal() {
        return abort.signal;
      },
      attempt: task.attempt,
      maxAttempts: task.maxAttempts,
      taskId: task.id,
      taskName: task.name,
      logger,
      reportProgress: this.reportProgress.bind(this, run),
    };
    try {
      const returned: unknown = await executeInProcess({
        taskClass: entry.taskClass,
        parameters,
        context,
        abort,
        timeoutMs: task.timeoutMs,
        userConnection,
        scope: { ...this.options.scope, ...this.userInScope(task) },
      });
      return { kind: "succeeded", id: task.id, runSeq: task.runSeq, ...taskResultOf(returned) };
    } catch (error) {
      // Interrupted by this worker (a shutdown, a chain handed back): queued again, its attempt
      // given back. A TaskInterruptedError the task's code threw by itself is a failure, or it
      // could run for ever without using up its attempts.
      if (isA(error, TaskInterruptedError) && run.abort.reason instanceof TaskInterruptedError) {
        return { kind: "released", id: task.id, runSeq: task.runSeq };
      }
      return this.failure(run, error, entry.options.backoff);
    }
  }

  /** Runs the attempt in a thread of the pool; the limits are enforced from here. */
  private executeIsolated(run: ActiveRun, entry: RegistryEntry, logger: Logger): Promise<RunOutcome> {
    const { task } = run;
    const pool = this.options.isolation?.pool;
    if (!pool || (!entry.dynamic && !entry.module)) {
      return this.failed(
        run,
        new Error(
          pool
            ? `the task class ${task.name} cannot run isolated: its module is unknown to the worker threads. ` +
                `Add \`static readonly taskModule = import.meta.url\` to the class, or list its module in createRuntime({ tasks: [...] }) ` +
                `or --tasks; or set \`static taskOptions = { isolation: "none" }\` to run it on the worker's event loop (trusted code only)`
            : `the task class ${task.name} asks to run isolated, but this worker has no threads`,
        ),
        "default",
      );
    }
    // A column edited by hand to hold no bytes: the codec's error, as on this event loop (the
    // thread's message carries bytes only).
    if (!isBytes(task)) return this.failed(run, parametersError(task.parameters), null);
    if (task.withUserConnection) {
      try {
        this.checkInitiator(task);
      } catch (error) {
        return this.failed(run, error, null);
      }
    }
    // Without an async function's frame and its extra promises: one attempt of many thousands a second.
    return this.isolatedOutcome(run, entry, pool.run(this.isolatedRun(run, entry, logger)));
  }

  /** What the thread pool needs of an attempt; `onStart` for a chained one (see beginChain). */
  private isolatedRun(run: ActiveRun, entry: RegistryEntry, logger: Logger, onStart?: () => void): IsolatedRun {
    const { task } = run;
    return {
      run: {
        id: task.id,
        name: task.name,
        module: entry.dynamic ? null : entry.module,
        // Copied into the message's one buffer for all its attempts (see packRuns).
        parameters: task.parameters,
        attempt: task.attempt,
        maxAttempts: task.maxAttempts,
        initiator: this.userInScope(task).user ?? null,
        withUserConnection: task.withUserConnection,
      },
      memoryLimitMb: entry.options.memoryLimitMb,
      abort: run.abort,
      timeoutMs: task.timeoutMs,
      abortGraceMs: this.options.isolation?.abortGraceMs ?? 5_000,
      onProgress: this.reportProgress.bind(this, run),
      onBlocked: this.runBlocked.bind(this, run),
      ...(onStart ? { onStart } : {}),
      logger,
    };
  }

  /** The outcome of an attempt in a thread, from what the pool settled it with. */
  private isolatedOutcome(run: ActiveRun, entry: RegistryEntry, settled: Promise<Uint8Array | undefined>): Promise<RunOutcome> {
    const { task } = run;
    return settled.then(
      (result): RunOutcome => (result ? { kind: "succeeded", id: task.id, runSeq: task.runSeq, result } : { kind: "succeeded", id: task.id, runSeq: task.runSeq }),
      (error: unknown): RunOutcome => {
        // The pool's own: interrupted by this worker or with the thread it shared (the thread's
        // report of a TaskInterruptedError its code threw by itself is a ThreadTaskError: a failure).
        if (error instanceof TaskInterruptedError) return { kind: "released", id: task.id, runSeq: task.runSeq };
        return this.failure(run, error, entry.options.backoff);
      },
    );
  }

  /** failure(), settled. */
  private failed(run: ActiveRun, error: unknown, backoff: Backoff): Promise<RunOutcome> {
    return Promise.resolve(this.failure(run, error, backoff));
  }

  /**
   * The user an attempt runs as (`currentUser()`, and the initiator its own starts carry): the
   * stored initiator once its signature checks out (a task with a user connection has had it
   * checked by checkInitiator before it gets here). A task without a user connection whose stored
   * initiator fails the check runs as no one: an initiator changed in the row would otherwise run
   * the task as that user, and each task it starts with a user connection would be signed for
   * them. A store without a secret signs nothing: there the stored initiator is taken as it is.
   */
  private userInScope(task: ClaimedTask): { user?: NonNullable<ClaimedTask["initiator"]> } {
    if (!task.initiator) return {};
    if (task.withUserConnection || (this.options.verifyInitiator?.(task) ?? null) !== false) return { user: task.initiator };
    if (!this.unverifiedWarned.has(task.id)) {
      this.unverifiedWarned.add(task.id);
      if (this.unverifiedWarned.size > 1_000) this.unverifiedWarned.clear();
      this.options.logger.warn(
        taskLogFields(task),
        "the task's stored initiator failed its integrity check (changed outside underway, signed with another secret, or started before tasks without a user connection were signed): it runs as no user",
      );
    }
    return {};
  }

  /** Tasks whose unverified initiator was logged (once each; forgotten past a thousand). */
  private readonly unverifiedWarned = new Set<string>();

  private checkInitiator(task: ClaimedTask): void {
    if (!task.initiator) throw new TaskSecurityError("the task needs a user connection but has no initiator");
    if (!this.options.verifyInitiator?.(task)) {
      throw new TaskSecurityError(
        "the task's initiator failed its integrity check: the row was changed outside underway, or this node's secret differs from the one that started the task",
      );
    }
  }

  private failure(run: ActiveRun, error: unknown, backoff: Backoff): RunOutcome {
    const { task } = run;
    const final =
      backoff === null ||
      isA(error, UnrecoverableTaskError) ||
      isA(error, TaskSecurityError) ||
      isA(error, TaskDeserializationError) ||
      (isA(error, ThreadTaskError) && error.kind !== "other" && error.kind !== "interrupted") ||
      task.attempt >= task.maxAttempts;
    const policy = backoff === "default" || backoff === null ? TASK_DEFAULTS.backoff : backoff;
    return {
      kind: "failed",
      id: task.id,
      runSeq: task.runSeq,
      attempt: task.attempt,
      error: describeThrown(error),
      retryDelayMs: final ? null : backoffDelay(task.attempt, policy, this.options.random),
    };
  }

  private end(run: ActiveRun, outcome: RunOutcome): void {
    if (run.progressTimer) {
      // The last report of a run that ended within the interval: stored now, ahead of its outcome
      // (on SQLite in that order; on PostgreSQL it is sent first, and refused should the outcome
      // be stored first).
      clearTimeout(run.progressTimer);
      this.writeProgress(run);
    }
    // The chain's slot stays taken until its last attempt ends.
    if (run.chain) {
      run.chain.waiting.delete(run);
      if (--run.chain.left > 0) this.chainExtra--;
      else if (run.chain.holdTimer) clearTimeout(run.chain.holdTimer);
    }
    this.runBlocked(run, false);
    this.active.delete(runKey(run.task));
    this.slotsHeldLong = false;
    // One that never started (handed back from its chain, or canceled there) ran for no time.
    if (run.startedAt !== null) {
      this.recentRunMs += (performance.now() - run.startedAt - this.recentRunMs) / 16;
      this.recentWeight += (1 - this.recentWeight) / 16;
      if (this.recentRunMs >= PREFETCH_RUN_MS) this.shortRuns = 0;
      else if (this.shortRuns < this.prefetch) this.shortRuns++;
    }
    // The next prefetched task starts in this slot now, not after the wake-up's turn.
    if (!this.stopping) this.startPrefetched();
    if (!run.discarded) {
      if (outcome.kind === "failed") {
        this.options.logger.warn(
          { ...taskLogFields(run.task), err: outcome.error },
          outcome.retryDelayMs === null ? "task failed; no attempts left" : `task failed; retry in ${outcome.retryDelayMs} ms`,
        );
      }
      this.completer.add(this.annotate(run, outcome));
    } else if (run.discarded !== "released") {
      if (run.discarded === "canceled") this.canceledRunEnded(run.task);
      const { id, name, attempt } = run.task;
      const durationMs = run.startedAt === null ? undefined : performance.now() - run.startedAt;
      this.emit({ type: "taskDiscarded", taskId: id, name, attempt, durationMs, reason: run.discarded });
    }
    if (this.active.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.slotFreed();
  }

  private annotate(run: ActiveRun, outcome: RunOutcome): WorkerOutcome {
    const { name, attempt } = run.task;
    const durationMs = run.startedAt === null ? null : performance.now() - run.startedAt;
    // Spelled out by kind: a spread of the union is several times slower, once per attempt.
    switch (outcome.kind) {
      case "succeeded":
        return outcome.result
          ? { kind: "succeeded", id: outcome.id, runSeq: outcome.runSeq, result: outcome.result, name, attempt, durationMs }
          : { kind: "succeeded", id: outcome.id, runSeq: outcome.runSeq, name, attempt, durationMs };
      case "released":
        return { kind: "released", id: outcome.id, runSeq: outcome.runSeq, name, attempt, durationMs };
      case "failed":
        return {
          kind: "failed",
          id: outcome.id,
          runSeq: outcome.runSeq,
          attempt,
          error: outcome.error,
          retryDelayMs: outcome.retryDelayMs,
          name,
          durationMs,
        };
    }
  }

  /** Called once outcomes are stored: events fire only for what the store accepted. */
  private written(outcomes: readonly WorkerOutcome[], rejected: ReadonlySet<string>, continuations: boolean | undefined): void {
    if (continuations !== false && outcomes.some((o) => o.kind === "succeeded" || (o.kind === "failed" && o.retryDelayMs === null))) {
      this.options.onContinuations?.();
    }
    const listening = this.options.onEvent !== undefined;
    for (const o of outcomes) {
      if (rejected.has(o.id)) {
        this.options.logger.warn({ taskId: o.id, task: o.name, attempt: o.attempt }, "outcome discarded: the task's lease had passed to another run");
        this.emit({ type: "taskDiscarded", taskId: o.id, name: o.name, attempt: o.attempt, durationMs: o.durationMs ?? undefined, reason: "lease lost" });
        continue;
      }
      if (!listening) continue;
      const base = { taskId: o.id, name: o.name, attempt: o.attempt };
      // Only a release can come from an attempt that never started (durationMs null: not timed).
      if (o.kind === "succeeded") this.emit({ type: "taskSucceeded", ...base, durationMs: o.durationMs ?? 0 });
      else if (o.kind === "released") this.emit({ type: "taskReleased", ...base, durationMs: o.durationMs ?? undefined });
      else this.emit({ type: o.retryDelayMs === null ? "taskDead" : "taskFailed", ...base, error: o.error, retryDelayMs: o.retryDelayMs, durationMs: o.durationMs ?? undefined });
    }
    // Claims wait while outcomes are behind (see BACKLOG_PER_CLAIM). A task handed back is due
    // again, and one failed is due at its retry: the next claim (or the next due time) finds it.
    if (outcomes.some((o) => o.kind !== "succeeded")) this.wake();
    else this.slotFreed();
  }

  private reportProgress(run: ActiveRun, fraction: number, message?: string | null): void {
    if (typeof fraction !== "number" || !(fraction >= 0 && fraction <= 1)) {
      throw new RangeError(`reportProgress: fraction must be a number from 0 to 1, got ${String(fraction)}`);
    }
    const text = message === undefined || message === null ? null : storableText(String(message).slice(0, 500));
    run.latestProgress = { fraction, text };
    if (run.progressTimer || run.discarded) return;
    run.progressTimer = setTimeout(() => {
      if (this.active.has(runKey(run.task))) this.writeProgress(run);
    }, PROGRESS_INTERVAL_MS);
    run.progressTimer.unref();
  }

  /** Stores the run's latest progress (at most every PROGRESS_INTERVAL_MS, and once more as it ends). */
  private writeProgress(run: ActiveRun): void {
    run.progressTimer = null;
    const latest = run.latestProgress;
    if (!latest || run.discarded) return;
    this.driver
      .taskProgressSet({ id: run.task.id, runSeq: run.task.runSeq, progress: latest.fraction, message: latest.text })
      .catch((error: unknown) => this.options.logger.warn({ err: error, ...taskLogFields(run.task) }, "storing progress failed"));
  }

  /** Aborts this worker's run of a task (it was canceled); its result is discarded. */
  abortTask(taskId: string, reason: Error): boolean {
    let found = false;
    // Prefetched, not started: it never runs (its row already says why).
    const at = this.prefetched.findIndex((p) => p.task.id === taskId);
    if (at >= 0) {
      const [held] = this.prefetched.splice(at, 1);
      if (held) this.canceledRunEnded(held.task);
      found = true;
    }
    for (const run of this.active.values()) {
      if (run.task.id !== taskId || run.discarded) continue;
      run.discarded = "canceled";
      run.abort.abort(reason);
      found = true;
    }
    return found;
  }

  /**
   * Renews the leases of the running tasks; a run whose lease was lost is aborted and discarded.
   * A run whose lease the store has not confirmed for so long that it would run out before the
   * next heartbeat (the store does not answer, or answers too late) is stopped first: another
   * worker may take its task over once the lease has run out, and the two must not run at once.
   */
  async heartbeat(): Promise<void> {
    // Outcomes not stored yet (the store refused or failed their write) hold their tasks too:
    // left to run out, a lease would let the task run again although its run ended here.
    const unstored = this.completer.unstored();
    if (this.active.size === 0 && unstored.length === 0) return;
    const sentAt = performance.now();
    this.fenceUnconfirmed(sentAt);
    // A canceled run's lease is renewed too until it ends: its task is not queued again meanwhile.
    const renewing = [...this.active.values()].filter((r) => r.discarded === false || r.discarded === "canceled");
    const ended = unstored.filter((o) => !this.active.has(runKey(o)));
    if (renewing.length === 0 && ended.length === 0) return;
    const runs = renewing.map((r) => ({ id: r.task.id, runSeq: r.task.runSeq }));
    for (const o of ended) runs.push({ id: o.id, runSeq: o.runSeq });
    let held;
    try {
      held = await this.driver.taskHeartbeat({ workerId: this.id, leaseMs: this.leaseMs, runs });
    } catch (error) {
      this.options.logger.error({ err: error }, "renewing leases failed; will retry at the next heartbeat");
      return;
    }
    const kept = new Map(held.map((h) => [runKey(h), h.canceled === true]));
    for (const run of renewing) if (kept.has(runKey(run.task)) && run.leasedAt < sentAt) run.leasedAt = sentAt;
    for (const ref of runs) {
      const canceled = kept.get(runKey(ref));
      if (canceled === false) continue;
      const run = this.active.get(runKey(ref));
      // Completed meanwhile, or already stopping; either way this run's result must not count.
      if (!run || run.discarded) continue;
      if (canceled) {
        // Canceled in another process.
        run.discarded = "canceled";
        run.abort.abort(new TaskCanceledError(ref.id));
        continue;
      }
      run.discarded = "lease lost";
      this.options.logger.warn(taskLogFields(run.task), "lease lost; aborting the run");
      run.abort.abort(new LeaseLostError(ref.id));
    }
  }

  /**
   * Stops the runs whose lease, as last confirmed, would run out before the next heartbeat could
   * renew it (and that missed at least one renewal: with a heartbeat close to the lease, a run
   * renewed on time is not stopped). Their results are discarded; their tasks run again once
   * their leases have run out in the store.
   */
  private fenceUnconfirmed(now: number): void {
    const limit = Math.max(this.leaseMs - this.heartbeatMs, 1.5 * this.heartbeatMs);
    for (const run of this.active.values()) {
      if (run.discarded || now - run.leasedAt < limit) continue;
      run.discarded = "lease lost";
      this.options.logger.error(
        { ...taskLogFields(run.task), unconfirmedMs: Math.round(now - run.leasedAt), leaseMs: this.leaseMs },
        "the store has not confirmed this run's lease, which runs out before the next heartbeat; stopping the run",
      );
      run.abort.abort(new LeaseLostError(run.task.id, true));
    }
  }

  /** Lets go of the lease of a canceled task's run that ended (or never started): the task may be retried now. */
  private canceledRunEnded(task: ClaimedTask): void {
    this.driver
      .taskCanceledRunsEnded([{ id: task.id, runSeq: task.runSeq }])
      .catch((error: unknown) =>
        this.options.logger.warn({ err: error, ...taskLogFields(task) }, "letting go of a canceled run's lease failed; the task can be retried once the lease runs out"),
      );
  }

  /**
   * Stops claiming, lets running tasks finish within `graceMs`, then aborts the rest and queues
   * them again without spending an attempt. Resolves once every outcome is stored.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.unsubscribeWake?.();
    for (const t of [this.pollTimer, this.nextRunTimer, this.claimTimer, this.prefetchTimer]) if (t) clearTimeout(t);
    this.pollTimer = this.nextRunTimer = this.claimTimer = this.prefetchTimer = null;
    // A claim on its way, and starts on their way to the store: a task they bring meanwhile goes
    // back with the rest. Each waited for at most a lease: a store that does not answer would
    // hold stop() for ever, and the lease of a task it hands over later runs out (it is rescued).
    if (!(await this.atMost(this.fillDone, this.leaseMs))) {
      this.options.logger.error({ waitedMs: this.leaseMs }, "stop: a claim got no answer from the store; stopping without it");
    }
    if (this.reserved > 0) await this.atMost(new Promise<void>((resolve) => this.reservationWaiters.push(resolve)), this.leaseMs);
    for (const { task } of this.prefetched.splice(0)) this.giveBack(task);
    // Chained attempts that have not started are handed back as well (their thread skips them).
    const chains = new Set<Chain>();
    for (const run of this.active.values()) if (run.chain && run.chain.waiting.size > 0) chains.add(run.chain);
    for (const chain of chains) this.handBackWaiting(chain, "the worker is shutting down");
    const graceMs = options.graceMs ?? 10_000;
    if (this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    for (const run of [...this.active.values()]) {
      if (run.discarded) continue;
      run.discarded = "released";
      this.completer.add(this.annotate(run, { kind: "released", id: run.task.id, runSeq: run.task.runSeq }));
      run.abort.abort(new TaskInterruptedError("the worker is shutting down; the task will run again"));
    }
    // Given up after 3 failed writes, or a lease without an answer: the outcomes not stored are
    // tasks whose leases run out, and which run again (at least once).
    if (!(await this.atMost(this.completer.flush(3), this.leaseMs))) {
      this.options.logger.error(
        { waitedMs: this.leaseMs, outcomes: this.completer.backlog },
        "stop: the store did not answer the last outcomes' write; their tasks run again once their leases run out",
      );
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.running = false;
  }

  /** Waits for `work` at most `ms`: true when it settled by then. */
  private async atMost(work: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([work.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How a failed attempt is retried: the class's backoff, the default one, or (null) never. */
type Backoff = "default" | { readonly baseMs: number; readonly maxMs: number; readonly jitter: number } | null;

/** A slot reserved by Worker.reserveStart: the claim a store's hand-off is made for. */
export interface StartReservation {
  readonly workerId: string;
  readonly leaseMs: number;
  /** Once: the task the store handed over, or null when it stored the task to wait its turn (or failed). */
  settle(claimed: ClaimedTask | null): void;
}

class Reservation implements StartReservation {
  private settled = false;

  constructor(
    private readonly worker: Worker,
    readonly workerId: string,
    readonly leaseMs: number,
    /** Before the store stored the task and its lease (see ActiveRun.leasedAt). */
    private readonly reservedAt: number,
  ) {}

  settle(claimed: ClaimedTask | null): void {
    if (this.settled) return;
    this.settled = true;
    this.worker.settleStart(claimed, this.reservedAt);
  }
}

/** A run is one claim of a task: the same task may be claimed again while a lost run lingers. */
function runKey(ref: { id: string; runSeq: number }): string {
  return `${ref.id}#${ref.runSeq}`;
}

function positive(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

type LogLine = [objectOrMessage: object | string, message?: string];

/** The fields every log line about an attempt carries: the task, its attempt and, when it has one, its user. */
function taskLogFields(task: ClaimedTask): { taskId: string; task: string; attempt: number; userId?: string } {
  return task.initiator
    ? { taskId: task.id, task: task.name, attempt: task.attempt, userId: task.initiator.userId }
    : { taskId: task.id, task: task.name, attempt: task.attempt };
}

/**
 * An attempt's logger, with its task's bindings: the child logger is made on the first line only
 * (most attempts log nothing, and a child costs its bindings' serialization).
 */
class RunLogger implements Logger {
  private made: Logger | null = null;

  constructor(
    private readonly parent: Logger,
    private readonly task: ClaimedTask,
  ) {}

  private get logger(): Logger {
    const { task } = this;
    return (this.made ??= this.parent.child(taskLogFields(task)));
  }

  debug(...line: LogLine): void {
    (this.logger.debug as (...line: LogLine) => void)(...line);
  }

  info(...line: LogLine): void {
    (this.logger.info as (...line: LogLine) => void)(...line);
  }

  warn(...line: LogLine): void {
    (this.logger.warn as (...line: LogLine) => void)(...line);
  }

  error(...line: LogLine): void {
    (this.logger.error as (...line: LogLine) => void)(...line);
  }

  child(bindings: Record<string, unknown>): Logger {
    return this.logger.child(bindings);
  }
}

/** Whether a claimed task's parameters are bytes (a row edited by hand may hold text or a number). */
function isBytes(task: ClaimedTask): boolean {
  return types.isUint8Array(task.parameters);
}

/** The codec's error for parameters that are not bytes. */
function parametersError(parameters: unknown): unknown {
  try {
    decodeParameters(parameters as Uint8Array);
  } catch (error) {
    return error;
  }
  return new TaskDeserializationError("parameters", "the stored parameters are not bytes");
}

/**
 * `value instanceof type`, false where asking throws: a thrown Proxy whose getPrototypeOf trap
 * throws is still an ordinary failure, retried as any other.
 */
function isA<T>(value: unknown, type: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}
