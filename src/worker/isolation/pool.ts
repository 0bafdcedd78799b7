import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { setPriority } from "node:os";
import type { MessagePort } from "node:worker_threads";
import { MessageChannel, receiveMessageOnPort, Worker as Thread } from "node:worker_threads";
import { describeThrown } from "../../tasks/error-info.ts";
import { TaskExitedError } from "../../tasks/errors/task-exited-error.ts";
import { TaskInterruptedError } from "../../tasks/errors/task-interrupted-error.ts";
import { TaskMemoryLimitError } from "../../tasks/errors/task-memory-limit-error.ts";
import { TaskTimeoutError } from "../../tasks/errors/task-timeout-error.ts";
import type { Logger } from "../../tasks/logger.ts";
import { describeMessage, isThreadMessage, packRuns, type FailureKind, type FromThread, type LogLevel, type ThreadRun, type ToThread } from "./protocol.ts";
import { ThreadTaskError } from "./thread-task-error.ts";
import { newThread } from "./exec-argv.ts";
import type { AbortListener, RunAbort } from "../run-abort.ts";
import { isLoading, newPauseCell, ThreadPauser, type PauseCell } from "./throttle.ts";

/** Lends the store to a new thread over a port; closed when the thread ends. */
export type StoreLending = (port: MessagePort) => {
  close(): Promise<void>;
  /** Whether the thread has a store transaction open. */
  readonly holdsTransaction?: boolean;
};

export interface ThreadPoolOptions {
  /** The thread's entry module. */
  readonly entry: URL;
  /** What every thread boots with (structured-cloneable). */
  readonly workerData: Record<string, unknown>;
  /**
   * A faster entry, with what to add to workerData for it, or null to keep `entry`: asked once,
   * before the first thread boots (a build the threads load instead of the sources).
   */
  readonly prepare?: () => Promise<{ readonly entry: URL; readonly workerData: Record<string, unknown> } | null>;
  readonly lendStore: StoreLending;
  /**
   * Stop a thread found running synchronously while it holds a store transaction, rather than
   * throttle it: on SQLite that transaction holds the store's one write lock, and every other
   * task's start, claim and outcome would wait for its timeout.
   */
  readonly stopBlockedInTransaction?: boolean;
  /**
   * The modules of the task classes known when a thread boots, which it loads before it is ready
   * (workerData `classModules`), so that no class's first attempt on it waits for its module.
   */
  readonly classModules?: () => readonly string[];
  readonly logger: Logger;
  /** Threads kept warm (booted before the first task and never retired). Default 1. */
  readonly minThreads?: number;
  /**
   * At most this many threads, not counting ones being stopped. Default: no limit (the worker's
   * concurrency bounds the runs). Below it, a spare thread is kept booted while all others are
   * held by long runs (a second or more), so the next run does not wait for a boot.
   */
  readonly maxThreads?: number;
  /** An idle thread above minThreads is retired after this long, ms. Default 30,000. */
  readonly idleMs?: number;
  /** Threads booting at once; more wait, so a burst of short tasks reuses threads. Default 2. */
  readonly bootConcurrency?: number;
  /** While threads exist, a run waits this long for a free one before another boots, ms. Default 20. */
  readonly growAfterMs?: number;
  /** The heap limit of threads whose task class sets none, MB. Default 256. */
  readonly memoryLimitMb?: number;
}

/** One attempt to run on a thread, with what the worker needs to hear back. */
export interface IsolatedRun {
  readonly run: ThreadRun;
  readonly memoryLimitMb: number | null;
  /** The attempt's abort: aborting it stops the run; the timeout aborts it too. */
  readonly abort: RunAbort;
  /** 0: no timeout. */
  readonly timeoutMs: number;
  /** After an abort, how long the task may take to stop by itself before its thread is stopped. */
  readonly abortGraceMs: number;
  readonly onProgress: (fraction: number, message: string | null) => void;
  /** Its thread has not answered for BLOCKED_RELEASE_MS (true), or answers again (false). */
  readonly onBlocked?: (blocked: boolean) => void;
  /** A chained attempt (see runChain) started, its predecessor having ended. */
  readonly onStart?: () => void;
  readonly logger: Logger;
}

/** An aborted task's thread that does not even answer within this is blocked: stopped at once. */
const ABORT_ACK_MS = 250;
/**
 * The watchdog looks at busy threads every WATCHDOG_MS; it pings a thread whose oldest attempt has
 * run PING_AFTER_MS, and one that has not answered for as long runs synchronously (blocked), ms.
 * A runaway loop so costs the others under a tenth of a second of a core before it is paused: on
 * two cores, at 100 ms for each it spun about 300 ms (a tick to reach the ping age, one to send
 * it, one to find it unanswered), a tenth of a drain's first seconds.
 */
const WATCHDOG_MS = 25;
const PING_AFTER_MS = 50;
/**
 * A thread loading a task module (tsx's loader, say: its first load takes a few hundred ms) is
 * neither taken for blocked nor paused for this long (see `whileLoading`), ms.
 */
const LOADING_GRACE_MS = 2_000;
/** How often a blocked thread is let run its slice (see BLOCKED_SLICE_MS), ms. */
const THROTTLE_PERIOD_MS = 100;
/** Runs shorter than this on average do not make the pool grow, unless one goes on for LONG_RUN_MS. */
const SHORT_RUN_MS = 2;
const LONG_RUN_MS = 1_000;
/**
 * A thread that runs synchronously past the watchdog, while other tasks run or wait, is paused
 * but for this slice of every THROTTLE_PERIOD_MS: long CPU work still advances (at a fiftieth of
 * its speed), a runaway costs the others almost nothing (two of them, with 5 ms slices, cost a
 * PostgreSQL drain about 4% more than with 1 ms ones here). With nothing else to do it runs freely.
 */
const BLOCKED_SLICE_MS = 2;
/**
 * Sharing: attempts of a class that has proven short here (SHARE_AFTER_RUNS runs averaging under
 * SHARE_RUN_MS, as the threads measured them, and never on a thread that stopped answering)
 * share threads, up to SHARE_MAX at once on one: a thread round trip per attempt then overlaps
 * with the others instead of queueing behind them. Every other attempt has a thread to itself.
 */
const SHARE_AFTER_RUNS = 8;
const SHARE_RUN_MS = 50;
const SHARE_MAX = 16;
/**
 * Attempts of a class that takes under TINY_RUN_MS on average (it barely runs: a no-op, a quick
 * write) share a thread up to SHARE_MAX_TINY at once, counting those waiting in chains (a chain
 * goes whole to a thread with room for its first, see runChain): fewer threads to wake, more
 * attempts per message (at concurrency 50, one thread instead of four: 13% more no-op tasks per
 * second; at concurrency 10, whose chains of 12 held 120 attempts, one thread instead of two:
 * about 10% more on SQLite, 128 against 64). Kept at the worker's CHAIN_IN_FLIGHT, so that the
 * chains it aims for fit one thread. A thread that blocks while holding them re-runs at most the
 * attempts whose ends it had not sent yet: it sends them every THREAD_FLUSH_AT messages
 * (thread-main.ts), not only at the end of its turn.
 */
const TINY_RUN_MS = 0.25;
const SHARE_MAX_TINY = 512;
/**
 * A shared thread that has not answered for this long is stopped: its attempts are handed back
 * (they run again, the attempt not counted) and their classes run alone from then on, so the one
 * that blocked meets its own limits in a thread of its own, ms.
 */
const SHARED_BLOCK_MS = 1_000;
/**
 * A watchdog check this late after the previous one: the worker's own thread was held up (a long
 * synchronous stretch, a pause of the process), and the threads' answers to pings may be waiting
 * unread behind the check, which the event loop runs first. The check is then made again once the
 * loop has read the threads' messages, ms.
 */
const STALLED_CHECK_MS = 4 * WATCHDOG_MS;
/** A thread to itself that has not answered for this long: the worker no longer counts its run against its concurrency, ms. */
const BLOCKED_RELEASE_MS = 500;
/**
 * Idle threads are pinged every IDLE_PING_MS: an attempt can leave work behind that runs after
 * it ended (a timer, a listener), and should that work run synchronously, the thread would spin
 * a core with nobody watching, and the next attempt handed to it would wait behind it. One that
 * has left a ping unanswered for PING_AFTER_MS is handed no attempt; after IDLE_STOP_MS it is
 * stopped (and the pool boots another while below minThreads), ms.
 */
const IDLE_PING_MS = 250;
const IDLE_STOP_MS = 1_000;

interface Current {
  readonly runId: number;
  readonly name: string;
  /** When it was placed, or started when it was chained. */
  readonly startedAt: number;
  onMessage(message: FromThread): void;
  /** It was chained (see runChain), and started. */
  onStarted(): void;
  /** Chained, and not started yet. */
  readonly waiting: boolean;
  /** It succeeded and returned nothing, in `ms` as its thread measured it (a packed end). */
  onSucceeded(ms: number): void;
  onGone(error: Error): void;
  /** Its run message could not be sent (the thread never saw it). */
  onRefused(error: Error): void;
  onBlocked(blocked: boolean): void;
}

/** What the pool knows of a task class from its runs here. */
interface ClassRecord {
  runs: number;
  avgMs: number;
  /** It was on a thread that stopped answering, or that died with several attempts on it. */
  tainted: boolean;
}

/** An attempt waiting for a thread. */
interface Waiter {
  readonly limit: number;
  /** Its task class: once the class proves short, the attempt may join a shared thread. */
  readonly name: string;
  readonly since: number;
  resolve(t: PoolThread): void;
  reject(e: Error): void;
  /** Reported to the worker as blocked (it waits behind an attempt of its class that blocks). */
  blocked: boolean;
  readonly onBlocked: ((blocked: boolean) => void) | undefined;
}

/** A thread of the pool. */
class PoolThread {
  readonly thread: Thread;
  /** The entry it booted from. */
  readonly entry: string;
  readonly ready: Promise<void>;
  /** The attempts on this thread: one, or several of short classes when it is shared. */
  readonly runs = new Map<number, Current>();
  /** It takes attempts of short classes beside each other (see SHARE_MAX). */
  shared = false;
  /** The classes of attempts handed this thread that are not placed on it yet (they are a microtask away). */
  readonly reserved: string[] = [];
  /** When its last attempts ended while it was shared (never: -Infinity). */
  sharedUntil = -Infinity;
  /** When the last run was placed here, and when a ping went out that is not answered yet. */
  runningSince = 0;
  pingSentAt = 0;
  /** The run whose abort made the pool stop this thread: the others on it are only interrupted. */
  culprit: number | null = null;
  /** The OS thread id (Linux), for lowering the priority of a thread that runs away. */
  tid: number | null = null;
  /** It ran synchronously past the watchdog: priority lowered, retired once its run ends. */
  niced = false;
  /** It has not answered since: paused while others work (see BLOCKED_SLICE_MS). */
  blocked = false;
  /** It became ready: a thread that did, then ended, is booted again while the pool is below minThreads. */
  booted = false;
  /** The class of the last attempt placed on it, which is most likely to have left work behind on it. */
  lastClass: string | null = null;
  /** When it was last let run a slice while blocked (see THROTTLE_PERIOD_MS). */
  sliceAt = -Infinity;
  /** Its run was reported blocked to the worker (see BLOCKED_RELEASE_MS). */
  reportedBlocked = false;
  readonly pause: PauseCell = newPauseCell();
  gone: Error | null = null;
  retiring = false;
  idleTimer: NodeJS.Timeout | null = null;
  readonly lending: ReturnType<StoreLending>;
  /** The worker's end of the thread's own channel (see thread-main's `port`). */
  private readonly port: MessagePort;

  constructor(
    readonly memoryLimitMb: number,
    options: ThreadPoolOptions,
    boot: { readonly entry: URL; readonly workerData: Record<string, unknown> },
    private readonly onGone: (t: PoolThread) => void,
    private readonly pauser: ThreadPauser,
  ) {
    const channel = new MessageChannel();
    // The worker's messages go over a channel of their own, not the thread's parentPort, which task code can reach.
    const host = new MessageChannel();
    this.port = host.port1;
    this.entry = boot.entry.href;
    this.thread = newThread(boot.entry, {
      workerData: {
        ...boot.workerData,
        classModules: options.classModules?.() ?? [],
        storePort: channel.port2,
        hostPort: host.port2,
        pauseCell: this.pause.cell,
        pauseName: this.pause.name,
      },
      transferList: [channel.port2, host.port2],
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    });
    // Lent once the thread exists (a thread that cannot be made leaves nothing open).
    this.lending = options.lendStore(channel.port1);
    let firstError: Error | null = null;
    let booted = false;
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromThread): void => {
        if (!isThreadMessage(message)) {
          // Only the thread's own runtime speaks on this channel: anything else means it is not itself any more.
          this.stop(new Error(`the thread sent a message that is not one of the worker's: ${describeMessage(message)}`));
          return;
        }
        if (message.t === "many") {
          for (const m of message.messages) onMessage(m);
          return;
        }
        if (message.t === "packed") {
          for (const runId of message.started) this.runs.get(runId)?.onStarted();
          for (const m of message.then) onMessage(m);
          for (let i = 0; i < message.runIds.length; i++) this.runs.get(message.runIds[i]!)?.onSucceeded(message.ms[i]!);
          return;
        }
        if (message.t === "ready") {
          if (booted) return; // once, at boot
          booted = true;
          this.booted = true;
          this.tid = message.tid;
          resolve();
          return;
        }
        if (message.t === "pong") {
          this.pingSentAt = 0;
          if (this.blocked) {
            this.blocked = false;
            void this.pauser.release(this.thread.threadId);
          }
          if (this.reportedBlocked) {
            this.reportedBlocked = false;
            for (const run of this.runs.values()) if (!run.waiting) run.onBlocked(false);
          }
          return;
        }
        if (message.t === "started") {
          this.runs.get(message.runId)?.onStarted();
          return;
        }
        if (message.t === "log" && message.runId === null) {
          logAt(options.logger, message.level, message.bindings, message.message);
          return;
        }
        if ("runId" in message && message.runId !== null) this.runs.get(message.runId)?.onMessage(message);
      };
      this.port.on("message", onMessage);
      // What ended the thread may be any value a task threw (null, a string, an object whose
      // properties throw), not only an Error.
      this.thread.on("error", (error: unknown) => {
        firstError ??=
          isObject(error) && safeRead(() => error.code) === "ERR_WORKER_OUT_OF_MEMORY"
            ? new TaskMemoryLimitError(memoryLimitMb)
            : booted
              ? exitedBy(error)
              : bootFailure(error);
      });
      this.thread.on("exit", (code) => {
        // What the thread sent before it ended is in the port's queue: read first, as the thread sent it.
        for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) onMessage(m.message as FromThread);
        this.port.close();
        const error = this.gone ?? firstError ?? new TaskExitedError(`process.exit(${code}) was called`);
        this.gone = error;
        void this.pauser.release(this.thread.threadId);
        reject(error);
        void this.lending.close();
        this.onGone(this);
        // Attempts that only shared the thread with the one at fault run again elsewhere, and
        // chained ones that had not started yet. (A thread with chained attempts waiting is shared:
        // the one that runs may have started in a turn whose messages never left the thread.)
        // The attempt at fault, when known, has usually left runs already (runEnded): every
        // attempt still here then only shared the thread.
        const shared = this.runs.size > 1 || (this.culprit !== null && !this.runs.has(this.culprit));
        for (const run of [...this.runs.values()]) {
          run.onGone(
            run.waiting
              ? new TaskInterruptedError(`its thread was stopped before it started (${error.name}: ${error.message}); the task will run again`)
              : shared && run.runId !== this.culprit
                ? new TaskInterruptedError(`the thread it shared was stopped (${error.name}: ${error.message}); the task will run again`)
                : error,
          );
        }
      });
    });
    // A boot failure is reported to the run that waits for the thread; never unhandled here.
    this.ready.catch(() => undefined);
  }

  private outbox: ToThread[] = [];

  /**
   * Sends at the end of this turn, with whatever else the turn sends the thread: a message costs
   * the worker's thread a wake-up of the other thread, which is most of its price.
   */
  post(message: ToThread): void {
    this.outbox.push(message);
    if (this.outbox.length === 1) queueMicrotask(() => this.flush());
  }

  private flush(): void {
    const messages = this.outbox;
    this.outbox = [];
    if (messages.length === 0 || this.gone) return;
    try {
      this.port.postMessage(packed(messages));
    } catch {
      // One the structured clone cannot carry: the others go on their own, but for the attempts
      // chained to one refused (the thread would start them at once, beside its predecessor).
      const refused = new Set<number>();
      for (const m of messages) {
        try {
          if (m.t === "run" && m.after !== undefined && refused.has(m.after)) throw new Error("the attempt it was chained to could not be sent to its thread");
          this.port.postMessage(packed([m]));
        } catch (error) {
          if (m.t !== "run") continue;
          refused.add(m.runId);
          this.runs.get(m.runId)?.onRefused(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
  }

  /** The oldest attempt's start, or Infinity. */
  oldestRun(): number {
    let oldest = Infinity;
    for (const run of this.runs.values()) oldest = Math.min(oldest, run.startedAt);
    return oldest;
  }

  /**
   * Stops the thread at once (even in a synchronous loop); `reason` is what its run reports
   * (`culprit`'s, when several share it; the others are interrupted).
   */
  stop(reason: Error, culprit: number | null = null): void {
    if (this.gone) return;
    this.gone = reason;
    this.culprit = culprit;
    // A paused thread does not see a termination, nor one the pauser is evaluating in: let it go first.
    void this.pauser.release(this.thread.threadId).then(() => {
      void this.thread.terminate();
      // Should an evaluation still have swallowed it, ask again a few times (each ask waits on
      // the thread's exit: a thread held in a native call would gather them without end).
      let asked = 1;
      const again = setInterval(() => {
        if (++asked > TERMINATE_ASKS) clearInterval(again);
        else void this.thread.terminate();
      }, 1_000);
      again.unref();
      this.thread.once("exit", () => clearInterval(again));
    });
  }
}

/** One message for what a turn sends a thread: its attempts packed (see packRuns), the rest as they are. */
function packed(messages: readonly ToThread[]): ToThread {
  const runs: Extract<ToThread, { t: "run" }>[] = [];
  const then: ToThread[] = [];
  for (const m of messages) {
    if (m.t === "run") runs.push(m);
    else then.push(m);
  }
  if (runs.length > 0) return { t: "packed", runs: packRuns(runs), then };
  return then.length === 1 ? then[0]! : { t: "many", messages: then };
}

/**
 * The thread marks that it loads a module, and is neither taken for blocked nor paused meanwhile,
 * for LOADING_GRACE_MS after the ping it left unanswered: the mark is in memory the task's code
 * could reach, so it excuses no more than that.
 */
function loadingExcused(t: PoolThread, now: number): boolean {
  return isLoading(t.pause) && now - t.pingSentAt < LOADING_GRACE_MS;
}

/** It has no ping unanswered for PING_AFTER_MS or longer: it is not running synchronously, as far as is known. */
function answers(t: PoolThread, now: number): boolean {
  return t.pingSentAt === 0 || now - t.pingSentAt < PING_AFTER_MS;
}

/** A thread that never became ready: the fault is the set-up's (a task module, the store), not a task's. */
function bootFailure(thrown: unknown): Error {
  const { name, message, stack } = describeThrown(thrown);
  const failure = new Error(`a task thread could not start: ${name}: ${message}`, { cause: thrown });
  failure.name = "TaskThreadStartError";
  if (stack) failure.stack = `${failure.name}: ${failure.message}\n${stack}`;
  return failure;
}

/**
 * Nice 19 still lets a spinning thread use up its time slice before a woken thread of another
 * process (the database server) runs, which costs each round trip milliseconds. Under
 * SCHED_IDLE it runs only when nothing else wants the core. Node has no call for it; util-linux's
 * chrt does (where it is missing, nice 19 stays).
 */
/**
 * Whether a thread that does not answer sleeps rather than runs, at this moment (Linux:
 * /proc/self/task/<tid>/stat; a spinning thread is R, one in a futex wait S): it waits
 * synchronously (an Atomics.wait of another realm, a WebAssembly wait) and takes no CPU from the
 * others. It must not be paused: the pause arrives as a wait evaluated inside that wait, which
 * ends the whole process. False where it cannot be read.
 */
function waitingNotRunning(t: PoolThread): boolean {
  if (t.tid === null) return false;
  try {
    const stat = readFileSync(`/proc/self/task/${t.tid}/stat`, "utf8");
    // "<tid> (<name>) <state> ...": the name may hold spaces and parentheses.
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state === "S" || state === "D";
  } catch {
    return false;
  }
}

/** How many times a thread that has not ended is asked to terminate, a second apart. */
const TERMINATE_ASKS = 5;

function lowerToIdlePolicy(tid: number): void {
  execFile("chrt", ["--idle", "--pid", "0", String(tid)], () => undefined).on("error", () => undefined);
}

function exitedBy(thrown: unknown): Error {
  const { name, message, stack } = describeThrown(thrown);
  const exited = new TaskExitedError(`${name}: ${message} was thrown outside run (the thread cannot go on)`);
  if (stack) exited.stack = `${exited.name}: ${exited.message}\n${stack}`;
  return exited;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** A property read that may throw (a getter, a revoked proxy): undefined then. */
function safeRead(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function logAt(logger: Logger, level: LogLevel, bindings: Record<string, unknown>, message: string): void {
  logger[level](bindings, message);
}

function kindOf(reason: unknown): FailureKind {
  if (reason instanceof TaskInterruptedError) return "interrupted";
  return "other";
}

/**
 * Worker threads for isolated attempts, one attempt per thread at a time: a thread that loops,
 * hangs, exits or outgrows its heap is stopped and replaced without touching the others. Threads
 * are reused across attempts and retired when idle.
 */
export class ThreadPool {
  private readonly idle: PoolThread[] = [];
  private readonly classes = new Map<string, ClassRecord>();
  private readonly all = new Set<PoolThread>();
  private watchdog: NodeJS.Timeout | null = null;
  /** Pings idle threads (see IDLE_PING_MS) while any is idle. */
  private idleWatch: NodeJS.Timeout | null = null;
  private lastIdleCheckAt = 0;
  private readonly waiters: Waiter[] = [];
  private pumpTimer: NodeJS.Timeout | null = null;
  private booting = 0;
  /** Threads booting, by the class of the attempt each was booted for. */
  private readonly bootingFor = new Map<string, number>();
  /** Average duration of recent runs as their threads measured them, ms. */
  private recentRunMs = SHORT_RUN_MS;
  private nextRunId = 1;
  /** When a run last started on a thread that answers, for telling whether others are working. */
  private lastRunAt = 0;
  private readonly pauser: ThreadPauser;
  private closed = false;
  private readonly minThreads: number;
  private readonly idleMs: number;
  private readonly bootConcurrency: number;
  private readonly growAfterMs: number;
  readonly memoryLimitMb: number;
  private readonly maxThreads: number;

  constructor(private readonly options: ThreadPoolOptions) {
    this.minThreads = options.minThreads ?? 1;
    this.idleMs = options.idleMs ?? 30_000;
    this.bootConcurrency = Math.max(1, options.bootConcurrency ?? 2);
    this.growAfterMs = options.growAfterMs ?? 20;
    this.memoryLimitMb = options.memoryLimitMb ?? 256;
    this.maxThreads = options.maxThreads ?? Infinity;
    this.boot = { entry: options.entry, workerData: options.workerData };
    this.pauser = new ThreadPauser(options.logger);
  }

  /** Boots a spare thread when none is idle or booting, below maxThreads. */
  private keepSpare(): void {
    if (this.closed || this.idle.length > 0 || this.booting > 0 || this.all.size >= this.maxThreads) return;
    this.bootIdle("a spare task thread could not start");
  }

  /** Boots a thread of the pool's memory limit that goes idle (or to a waiter) once ready; a failure is logged as `failure`. */
  private bootIdle(failure: string): void {
    this.booting++;
    const thread = this.spawn(this.memoryLimitMb);
    thread.ready.then(
      () => {
        this.booting--;
        this.makeIdle(thread);
        this.pump();
      },
      (error: Error) => {
        this.booting--;
        this.options.logger.warn({ err: error }, failure);
        this.pump();
      },
    );
  }

  /** How threads boot: the sources' entry, or the faster one `prepare` gave. */
  private boot: { entry: URL; workerData: Record<string, unknown> };
  private prepared: Promise<void> | null = null;

  /** Asks `prepare` for a faster entry, once; threads booted meanwhile use the sources'. */
  private prepareBoot(): Promise<void> {
    this.prepared ??= (async () => {
      if (!this.options.prepare) return;
      try {
        const faster = await this.options.prepare();
        if (faster) this.boot = { entry: faster.entry, workerData: { ...this.options.workerData, ...faster.workerData } };
      } catch (error) {
        this.options.logger.warn({ err: error }, "task threads boot from the sources (slower): their build could not be prepared");
      }
    })();
    return this.prepared;
  }

  /** Boots the warm threads; resolves when they are ready (a boot failure rejects). */
  async warm(): Promise<void> {
    await this.prepareBoot();
    const threads: PoolThread[] = [];
    for (let i = this.all.size; i < this.minThreads; i++) threads.push(this.spawn(this.memoryLimitMb));
    const booted = await Promise.allSettled(threads.map((t) => t.ready));
    const failed = threads.findIndex((_, i) => booted[i]!.status === "rejected");
    if (failed >= 0) {
      const reason = (booted[failed] as PromiseRejectedResult).reason as unknown;
      if (this.bootFromSources(threads[failed]!, reason)) return this.warm();
      throw reason;
    }
    for (const t of threads) this.makeIdle(t);
  }

  /**
   * A thread could not boot from the faster entry (its build removed from under this process,
   * say): threads boot from the sources from now on, and the boot is worth another try. False
   * when it booted from the sources already.
   */
  private bootFromSources(thread: PoolThread, error: unknown): boolean {
    if (thread.entry === this.options.entry.href) return false;
    if (this.boot.entry.href !== this.options.entry.href) {
      this.options.logger.warn({ err: error }, "a task thread could not boot from the build of the sources; threads boot from the sources from now on");
      this.boot = { entry: this.options.entry, workerData: this.options.workerData };
    }
    return true;
  }

  get size(): number {
    return this.all.size;
  }

  private spawn(limit: number): PoolThread {
    const thread = new PoolThread(limit, this.options, this.boot, (t) => this.forget(t), this.pauser);
    this.all.add(thread);
    return thread;
  }

  /**
   * A thread that has not answered a ping for PING_AFTER_MS is running synchronously: a runaway
   * loop, or long CPU work. Its OS priority is lowered (nice 19, SCHED_IDLE), and while other
   * tasks run or wait it is paused but for a slice of each period (see BLOCKED_SLICE_MS), so the
   * worker's own thread and every other task keep the cores until its timeout stops it. It is
   * retired after that run. A shared thread is not paused (the others on it would wait too): it
   * is stopped after SHARED_BLOCK_MS.
   */
  private checkBusyThreads(): void {
    const now = performance.now();
    const stalled = this.lastCheckAt !== 0 && now - this.lastCheckAt >= STALLED_CHECK_MS;
    this.lastCheckAt = now;
    if (stalled) {
      // No verdict on a wait that was ours: look again after the loop has read the answers.
      setImmediate(() => {
        if (this.watchdog) this.checkBusyThreads();
      });
      return;
    }
    let busy = 0;
    let answering = 0;
    const blocked: PoolThread[] = [];
    for (const t of this.all) {
      if (t.runs.size === 0 || t.gone) continue;
      busy++;
      if (t.pingSentAt === 0) {
        if (now - t.oldestRun() >= PING_AFTER_MS) {
          t.pingSentAt = now;
          t.post({ t: "ping" });
        }
      } else if (t.runs.size > 1 && now - t.pingSentAt >= SHARED_BLOCK_MS) {
        for (const run of t.runs.values()) this.record(run.name).tainted = true;
        t.stop(new TaskInterruptedError("a task on a shared thread ran synchronously for a second"));
        continue;
      } else if (t.runs.size === 1 && now - t.pingSentAt >= PING_AFTER_MS && !t.blocked && !loadingExcused(t, now)) {
        if (this.options.stopBlockedInTransaction && t.lending.holdsTransaction) {
          const error = new Error(
            "it ran synchronously inside a store transaction, which held the store's write lock from every other task: its thread was stopped and the transaction rolled back",
          );
          error.name = "TaskBlockedTransactionError";
          t.stop(error);
          continue;
        }
        t.blocked = true;
        if (!t.niced && t.tid !== null) this.lowerPriority(t.tid);
        t.niced = true;
      }
      if (t.blocked) {
        blocked.push(t);
        if (!t.reportedBlocked && now - t.pingSentAt >= BLOCKED_RELEASE_MS) {
          t.reportedBlocked = true;
          // Chained attempts waiting behind it hold no slot of their own.
          for (const run of t.runs.values()) if (!run.waiting) run.onBlocked(true);
        }
      } else answering++;
    }
    // Each blocked thread gets its slice once a period (a thread found blocked now: paused at once).
    const due = blocked.filter((t) => now - t.sliceAt >= THROTTLE_PERIOD_MS - WATCHDOG_MS / 2);
    for (const t of due) t.sliceAt = now;
    if (due.length > 0) this.throttle(due, answering > 0 || this.waiters.length > 0 || this.recentlyWorked(now));
    // Attempts that wait because an attempt of their class blocks its thread (see `served`)
    // would wait as long as others work: like a blocked run, they stop holding a worker slot.
    for (const w of this.waiters) {
      if (w.blocked || now - w.since < BLOCKED_RELEASE_MS) continue;
      if (blocked.some((t) => [...t.runs.values()].some((run) => run.name === w.name))) {
        w.blocked = true;
        w.onBlocked?.(true);
      }
    }
    // Every thread held by a long run (say, runaways waiting for their timeout): have one ready.
    if (busy === this.all.size && busy > 0 && [...this.all].every((t) => now - t.runningSince >= LONG_RUN_MS && !t.shared)) this.keepSpare();
    if (busy === 0 && this.watchdog) {
      clearInterval(this.watchdog);
      this.watchdog = null;
      this.lastCheckAt = 0;
    }
  }

  /** A run started on a thread that answers within the last two throttle periods. */
  private recentlyWorked(now: number): boolean {
    return now - this.lastRunAt < 2 * THROTTLE_PERIOD_MS;
  }

  private lowerPriority(tid: number): void {
    if (tid === process.pid) return; // never the worker's own thread
    try {
      setPriority(tid, 19);
    } catch (error) {
      this.options.logger.warn({ err: error }, "could not lower the priority of a task thread that runs synchronously");
    }
    lowerToIdlePolicy(tid);
  }

  /** Lets blocked threads run a slice now; pauses them after it while others work. */
  private throttle(blocked: readonly PoolThread[], othersWork: boolean): void {
    for (const t of blocked) this.pauser.resume(t.thread.threadId);
    if (!othersWork) return;
    const slice = setTimeout(() => {
      for (const t of blocked) {
        if (t.blocked && !t.gone && t.runs.size === 1 && !loadingExcused(t, performance.now()) && !waitingNotRunning(t)) {
          this.pauser.pause(t.thread.threadId, t.pause);
        }
      }
    }, BLOCKED_SLICE_MS);
    slice.unref();
  }

  private watchIdle(): void {
    if (this.idleWatch || this.closed) return;
    this.lastIdleCheckAt = performance.now();
    this.idleWatch = setInterval(() => this.checkIdleThreads(), IDLE_PING_MS);
    this.idleWatch.unref();
  }

  /**
   * Pings the idle threads; stops one that has left a ping unanswered for IDLE_STOP_MS: what runs
   * there synchronously is work an attempt left behind (see IDLE_PING_MS), and only stopping the
   * thread ends it.
   */
  private checkIdleThreads(): void {
    const now = performance.now();
    // Late (the worker's own thread was held up): the answers may be waiting unread; look again after them.
    const stalled = now - this.lastIdleCheckAt >= 2 * IDLE_PING_MS;
    this.lastIdleCheckAt = now;
    if (stalled) {
      setImmediate(() => {
        if (this.idleWatch) this.checkIdleThreads();
      });
      return;
    }
    for (const t of [...this.idle]) {
      if (t.gone) continue;
      if (t.pingSentAt === 0) {
        t.pingSentAt = now;
        t.post({ t: "ping" });
      } else if (now - t.pingSentAt >= IDLE_STOP_MS && !loadingExcused(t, now)) {
        this.idle.splice(this.idle.indexOf(t), 1);
        if (t.idleTimer) clearTimeout(t.idleTimer);
        this.options.logger.warn(
          { task: t.lastClass, threadId: t.thread.threadId },
          "a task thread ran synchronously for a second after its attempts had ended (work an attempt left behind: a timer, a listener); it was stopped",
        );
        t.stop(new Error("it ran synchronously while idle"));
      }
    }
    if (this.idle.length === 0 && this.idleWatch) {
      clearInterval(this.idleWatch);
      this.idleWatch = null;
    }
  }

  /** When the watchdog last looked (0: not watching), to tell a stall of the worker's own thread. */
  private lastCheckAt = 0;

  private watch(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => this.checkBusyThreads(), WATCHDOG_MS);
    this.watchdog.unref();
  }

  private record(name: string): ClassRecord {
    let record = this.classes.get(name);
    if (!record) this.classes.set(name, (record = { runs: 0, avgMs: 0, tainted: false }));
    return record;
  }

  private shareable(name: string): boolean {
    const record = this.classes.get(name);
    return record !== undefined && !record.tainted && record.runs >= SHARE_AFTER_RUNS && record.avgMs < SHARE_RUN_MS;
  }

  /** How many attempts may share a thread, for one of this class to join them. */
  private shareMax(name: string): number {
    return (this.classes.get(name)?.avgMs ?? Infinity) < TINY_RUN_MS ? SHARE_MAX_TINY : SHARE_MAX;
  }

  /**
   * A shared thread with room for one more attempt of this limit. Attempts of a class that takes
   * a couple of milliseconds or less go to the fullest such thread: one thread then carries them
   * all, and each message to it carries more of them (spread over threads, every thread's wake-up
   * costs the worker's thread its own). Longer ones go to the least loaded, to use the cores.
   */
  private sharedWithRoom(limit: number, name: string): PoolThread | null {
    const best = this.sharedRoom(limit, name);
    if (best) {
      const i = this.idle.indexOf(best);
      if (i >= 0) {
        this.idle.splice(i, 1);
        if (best.idleTimer) clearTimeout(best.idleTimer);
      }
    }
    return best;
  }

  /** The shared thread sharedWithRoom would take, left where it is. */
  private sharedRoom(limit: number, name: string): PoolThread | null {
    const pack = (this.classes.get(name)?.avgMs ?? Infinity) < SHORT_RUN_MS;
    const max = this.shareMax(name);
    let best: PoolThread | null = null;
    for (const t of this.all) {
      if (!t.shared || t.gone || t.blocked || t.niced || t.memoryLimitMb !== limit) continue;
      // Not answering for a while: it may be blocked; new work goes elsewhere until it answers.
      if (!answers(t, performance.now())) continue;
      const load = t.runs.size + t.reserved.length;
      // Empty: only one that is idle after carrying shared attempts a moment ago (they come and
      // go between claims), or is handed some now.
      if (load === 0 && !(performance.now() - t.sharedUntil < LONG_RUN_MS && this.idle.includes(t))) continue;
      if (load >= max) continue;
      if (!best || (pack ? load > best.runs.size + best.reserved.length : load < best.runs.size + best.reserved.length)) best = t;
    }
    return best;
  }

  private forget(thread: PoolThread): void {
    // Died with several attempts on it (memory, exit): which one did it is not known.
    if (thread.runs.size > 1) for (const run of thread.runs.values()) this.record(run.name).tainted = true;
    this.all.delete(thread);
    const i = this.idle.indexOf(thread);
    if (i >= 0) this.idle.splice(i, 1);
    if (thread.idleTimer) clearTimeout(thread.idleTimer);
    // One that ran attempts and ended (stopped at a timeout, died, went silent): the warm threads
    // are kept. Not one that never ran any (it never booted, or died idle: a task module's own
    // timer that throws, say), or a set-up that cannot keep a thread would boot them in a loop.
    if (thread.booted && thread.lastClass !== null) this.refill();
    this.pump();
  }

  /** Boots threads while the pool, counting those booting, is below minThreads. */
  private refill(): void {
    while (!this.closed && this.all.size < this.minThreads) this.bootIdle("a task thread could not start to replace one that ended");
  }

  private acquire(limit: number, name: string, abort: RunAbort, onBlocked?: (blocked: boolean) => void): Promise<PoolThread> {
    if (this.closed) return Promise.reject(new Error("the worker's thread pool is closed"));
    // An attempt of a class not seen yet waits for the end of the turn, with the others that
    // arrive in it: an idle thread then goes to the class with the most attempts waiting (see
    // waiterFor), not to whichever came first.
    const known = (this.classes.get(name)?.runs ?? 0) > 0;
    const i = known ? this.idleFor(limit, name) : -1;
    if (i >= 0) {
      const [thread] = this.idle.splice(i, 1) as [PoolThread];
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      thread.reserved.push(name);
      return Promise.resolve(thread);
    }
    return new Promise<PoolThread>((resolve, reject) => {
      const waiter: Waiter = {
        limit,
        name,
        since: performance.now(),
        blocked: false,
        onBlocked,
        resolve: (t: PoolThread) => {
          abort.unlisten(aborted);
          resolve(t);
        },
        reject: (e: Error) => {
          abort.unlisten(aborted);
          reject(e);
        },
      };
      const aborted: AbortListener = {
        handleEvent: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(abort.reason instanceof Error ? abort.reason : new Error(String(abort.reason)));
        },
      };
      abort.listen(aborted);
      this.waiters.push(waiter);
      if (known) this.pump();
      else this.pumpAfterTurn();
    });
  }

  private pumpScheduled = false;

  /** Pumps once the attempts this turn started have all asked for threads. */
  private pumpAfterTurn(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Boots threads for waiters, a few at a time. A new thread costs tens of MB and a fraction of a
   * second, so while threads exist the pool grows only when a run has waited `growAfterMs` for
   * one: a burst of short tasks shares a few threads; slow tasks get a thread each. A waiter whose
   * class is already being served does not make it grow either (see `served`).
   */
  private pump(): void {
    if (this.pumpTimer) {
      clearTimeout(this.pumpTimer);
      this.pumpTimer = null;
    }
    this.dispatch();
    while (!this.closed && this.waiters.length > this.booting && this.booting < this.bootConcurrency) {
      const now = performance.now();
      const waited = now - this.waiters[0]!.since;
      const waiter =
        this.all.size === 0 ? this.waiters[0] : this.waiters.find((w) => !this.served(w.name, now) && this.shouldGrow(now, now - w.since, this.shareable(w.name)));
      if (!waiter) {
        // Look again once the first waiter has waited long enough.
        if (waited < this.growAfterMs) this.pumpTimer = setTimeout(() => this.pump(), Math.ceil(this.growAfterMs - waited));
        break;
      }
      const { limit, name } = waiter;
      this.booting++;
      this.bootingFor.set(name, (this.bootingFor.get(name) ?? 0) + 1);
      const booted = (): void => {
        this.booting--;
        const left = (this.bootingFor.get(name) ?? 1) - 1;
        if (left > 0) this.bootingFor.set(name, left);
        else this.bootingFor.delete(name);
      };
      const thread = this.spawn(limit);
      thread.ready.then(
        () => {
          booted();
          this.makeIdle(thread);
          this.pump();
        },
        (error: Error) => {
          booted();
          // From the sources, the next boot may succeed: the waiters wait for it.
          if (this.bootFromSources(thread, error)) return this.pump();
          // A thread that cannot boot fails the run that waited longest, not every run forever.
          const at = this.waiters.findIndex((w) => w.limit === limit);
          if (at >= 0) this.waiters.splice(at, 1)[0]!.reject(error);
          this.pump();
        },
      );
    }
    // Attempts still waiting: look again in a while (a class stops being served as its first run goes on).
    if (!this.pumpTimer && this.waiters.length > 0 && !this.closed) this.pumpTimer = setTimeout(() => this.pump(), this.growAfterMs);
    this.pumpTimer?.unref();
  }

  /**
   * Whether waiting attempts of this class will be served by what is under way, so that a thread
   * booted for them would most likely be wasted: a thread is booting for, or was handed to, an
   * attempt of the class already, or the class never finished a run here and its first one has
   * been going for under LONG_RUN_MS
   * (a new class is as likely to be short, then to share threads, as long; its first run also
   * loads its module); or an attempt of the class blocks its thread while others work. A class
   * known to take long gets a thread per waiting attempt.
   */
  private served(name: string, now: number): boolean {
    if ((this.bootingFor.get(name) ?? 0) > 0) return true;
    const known = (this.classes.get(name)?.runs ?? 0) > 0;
    // The common case, asked per waiter: a known class, no thread blocked.
    if (known) {
      let anyBlocked = false;
      for (const t of this.all) if (t.blocked) anyBlocked = true;
      if (!anyBlocked) return false;
    }
    if (!known) {
      for (const t of this.all) {
        if (t.reserved.includes(name)) return true;
        if (t.blocked) continue;
        for (const run of t.runs.values()) if (run.name === name && now - run.startedAt < LONG_RUN_MS) return true;
      }
    }
    return this.heldBack(name, now);
  }

  /**
   * An attempt of the class holds its thread synchronously (paused while others work, see
   * BLOCKED_SLICE_MS): another would be paused as well, so it waits while others work (a run
   * that started a moment ago counts: short tasks leave their thread empty between claims), even
   * when threads are idle.
   */
  private heldBack(name: string, now: number): boolean {
    let othersWork = false;
    let blocked = false;
    for (const t of this.all) {
      if (t.runs.size === 0) continue;
      if (!t.blocked) othersWork = true;
      else if (!blocked) for (const run of t.runs.values()) if (run.name === name) blocked = true;
    }
    return blocked && (othersWork || this.recentlyWorked(now) || this.waiters.some((w) => w.name !== name));
  }

  /**
   * More threads help only when the ones there are held by runs that take long. When runs are
   * short (as the threads measure them) but wait anyway, the worker's own thread is the
   * bottleneck, and more threads would only cost memory: then only a run going on for a
   * second counts as long.
   */
  private shouldGrow(now: number, waited: number, share: boolean): boolean {
    if (waited < this.growAfterMs) return false;
    // The youngest busy run: a thread about to come free makes a new one useless (threads held
    // by runaways, however old their runs, do not count against one that cycles quickly). A
    // shared thread comes free only for attempts that may share (see waiterFor).
    let youngest = Infinity;
    for (const t of this.all) {
      if (t.runs.size + t.reserved.length > 0 && (share || !t.shared)) youngest = Math.min(youngest, now - t.runningSince);
    }
    const shortRuns = this.recentRunMs < SHORT_RUN_MS;
    return youngest >= (shortRuns ? LONG_RUN_MS : this.growAfterMs);
  }

  private makeIdle(thread: PoolThread): void {
    // A thread handed to an attempt whose run is placed a moment later (see handOut) is not idle.
    if (thread.gone || thread.runs.size > 0 || thread.reserved.length > 0 || this.idle.includes(thread)) return;
    if (this.closed) {
      thread.stop(new Error("the pool closed"));
      return;
    }
    const at = this.waiterFor(thread, 1);
    if (at >= 0) {
      this.handOut(at, thread);
      return;
    }
    // Waiters for another limit while this one idles: make room for theirs.
    if (this.waiters.some((w) => w.limit !== thread.memoryLimitMb) && this.booting < this.waiters.length) {
      thread.stop(new Error("retired for a thread of another memory limit"));
      return;
    }
    // Reused last-in first-out, so threads beyond what the load needs stay idle and retire.
    this.idle.unshift(thread);
    this.watchIdle();
    thread.idleTimer = setTimeout(() => {
      if (this.all.size > this.minThreads && this.idle.includes(thread) && thread.runs.size === 0 && thread.reserved.length === 0) {
        thread.stop(new Error("retired when idle"));
      }
    }, this.idleMs);
    thread.idleTimer.unref();
  }

  /**
   * The waiter an idle thread goes to (-1: none), `idle` being how many threads of its limit are
   * idle, this one included. First an attempt of a class that nothing serves (see `served`). An
   * attempt of a class that is served takes an idle thread only while another stays idle for
   * others (were the last taken by a second runaway of a class, the next short task would wait
   * for a boot), and none while it is held back (see `heldBack`). A thread that carried shared
   * attempts in the last second stays for those (they come and go between claims): another
   * attempt gets a thread of its own rather than hold one that carries many.
   */
  private waiterFor(thread: PoolThread, idle: number): number {
    const now = performance.now();
    const limit = thread.memoryLimitMb;
    if (now - thread.sharedUntil < LONG_RUN_MS) return this.waiters.findIndex((w) => w.limit === limit && this.shareable(w.name));
    const at = this.crowdedWaiter(limit, now);
    if (at >= 0 || idle < 2) return at;
    return this.waiters.findIndex((w) => w.limit === limit && !this.heldBack(w.name, now));
  }

  /**
   * The first waiter of this limit whose class nothing serves, of the class with the most such
   * waiters: if that class is short, the thread serves them all (they share it once it proved so).
   */
  private crowdedWaiter(limit: number, now: number): number {
    const counts = new Map<string, number>();
    for (const w of this.waiters) if (w.limit === limit) counts.set(w.name, (counts.get(w.name) ?? 0) + 1);
    let best: string | null = null;
    for (const [name, count] of counts) {
      if (this.served(name, now)) continue;
      if (best === null || count > counts.get(best)!) best = name;
    }
    return best === null ? -1 : this.waiters.findIndex((w) => w.limit === limit && w.name === best);
  }

  /** An idle thread an attempt of this class may take now (see waiterFor), or -1. */
  private idleFor(limit: number, name: string): number {
    const now = performance.now();
    const idle = this.idle.filter((t) => t.memoryLimitMb === limit && answers(t, now));
    const candidates = this.shareable(name) ? idle : idle.filter((t) => now - t.sharedUntil >= LONG_RUN_MS);
    if (candidates.length === 0 || (this.served(name, now) && (idle.length < 2 || this.heldBack(name, now)))) return -1;
    return this.idle.indexOf(candidates[0]!);
  }

  /** Hands idle threads to waiters that may take them now (their class is no longer served, say). */
  private dispatch(): void {
    const now = performance.now();
    for (let i = 0; i < this.idle.length && this.waiters.length > 0; ) {
      const thread = this.idle[i]!;
      const at = answers(thread, now) ? this.waiterFor(thread, this.idle.filter((t) => t.memoryLimitMb === thread.memoryLimitMb && answers(t, now)).length) : -1;
      if (at < 0) {
        i++;
        continue;
      }
      this.idle.splice(i, 1);
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      this.handOut(at, thread);
    }
  }

  /**
   * Gives the waiting attempt at `at` this thread. It counts as busy from now (its run is placed
   * a microtask later): the pool must not boot another thread for want of one that is taken.
   */
  private handOut(at: number, thread: PoolThread): void {
    const [waiter] = this.waiters.splice(at, 1) as [Waiter];
    if (waiter.blocked) waiter.onBlocked?.(false);
    thread.reserved.push(waiter.name);
    thread.runningSince = performance.now();
    waiter.resolve(thread);
  }

  /** A shared thread with room takes waiting attempts of classes that may share (they proved short meanwhile). */
  private fillShared(thread: PoolThread): void {
    if (!thread.shared || thread.gone || thread.blocked || thread.niced) return;
    for (let i = 0; i < this.waiters.length && thread.runs.size + thread.reserved.length < SHARE_MAX_TINY; ) {
      const w = this.waiters[i]!;
      if (w.limit === thread.memoryLimitMb && this.shareable(w.name) && thread.runs.size + thread.reserved.length < this.shareMax(w.name)) this.handOut(i, thread);
      else i++;
    }
  }

  /**
   * Runs one attempt on a thread: resolves when it succeeded, with its encoded result if run
   * returned one; rejects with why it did not succeed.
   */
  run(r: IsolatedRun): Promise<Uint8Array | undefined> {
    const { abort } = r;
    if (abort.aborted) return Promise.reject(abort.reason as Error);
    const limit = r.memoryLimitMb ?? this.memoryLimitMb;
    const name = r.run.name;
    const withRoom = this.shareable(name) ? this.sharedWithRoom(limit, name) : null;
    // On a shared thread with room, placed now (no promise to wait for: one less turn per attempt).
    if (withRoom) {
      withRoom.reserved.push(name);
      return this.place(withRoom, r);
    }
    return this.acquire(limit, name, abort, r.onBlocked).then((thread) => this.place(thread, r));
  }

  /**
   * Attempts of this class (with this memory limit, null: the pool's) may run chained now (see
   * runChain): it proved tiny (TINY_RUN_MS), shares threads, and a shared thread has room.
   */
  chainable(name: string, memoryLimitMb: number | null): boolean {
    return this.tiny(name) && this.sharedRoom(memoryLimitMb ?? this.memoryLimitMb, name) !== null;
  }

  /** The class proved tiny (TINY_RUN_MS) and shares threads. */
  private tiny(name: string): boolean {
    return this.shareable(name) && (this.classes.get(name)?.avgMs ?? Infinity) < TINY_RUN_MS;
  }

  /**
   * Runs attempts of one tiny class (see chainable) one after another on one shared thread: each
   * starts there as the one before it ends, without waiting for the worker, and is reported
   * started then (IsolatedRun.onStart; its timeout counts from then). They take one slot of the
   * worker's between them: at low concurrency a thread would otherwise wait for the worker after
   * every attempt, and the worker for the thread. Resolves as run() does, one promise per
   * attempt; null, with nothing done, when no shared thread has room.
   */
  runChain(rs: readonly IsolatedRun[]): Promise<Uint8Array | undefined>[] | null {
    const first = rs[0];
    if (!first || !this.tiny(first.run.name)) return null;
    const name = first.run.name;
    const thread = this.sharedWithRoom(first.memoryLimitMb ?? this.memoryLimitMb, name);
    if (!thread) return null;
    let after = 0;
    return rs.map((r) => {
      thread.reserved.push(name);
      const runId = this.nextRunId;
      const placed = this.place(thread, r, after);
      // Sent (an attempt aborted already is not): the next one follows it.
      if (this.nextRunId !== runId) after = runId;
      return placed;
    });
  }

  /**
   * Places the attempt on the thread handed to it (reserved for it until now); with `after`, to
   * start once that attempt of the thread has ended (see runChain).
   */
  private place(thread: PoolThread, r: IsolatedRun, after = 0): Promise<Uint8Array | undefined> {
    const { abort } = r;
    const name = r.run.name;
    thread.reserved.splice(thread.reserved.indexOf(name), 1);
    if (abort.aborted) {
      // Aborted between the thread's hand-over and now: the thread never hears of it, and is free
      // for others (an abort sent for a run it never got would be taken for a run that ignores it).
      if (thread.runs.size === 0) this.makeIdle(thread);
      else this.fillShared(thread);
      return Promise.reject(abort.reason instanceof Error ? abort.reason : new Error(String(abort.reason)));
    }
    // Whether the class may share is decided when it is placed: it may have proven short while it waited.
    if (thread.runs.size === 0) thread.shared = this.shareable(name);
    const runId = this.nextRunId++;
    thread.lastClass = name;
    return new Promise<Uint8Array | undefined>((resolve, reject) => {
      const attempt = new PlacedRun(this, thread, runId, r, after !== 0, resolve, reject);
      thread.runs.set(runId, attempt);
      thread.runningSince = attempt.startedAt;
      this.lastRunAt = attempt.startedAt;
      thread.pingSentAt = 0;
      this.watch();
      abort.listen(attempt);
      thread.post(after !== 0 ? { t: "run", runId, run: r.run, after } : { t: "run", runId, run: r.run });
      // Other attempts of its class that wait may join it now.
      if (thread.runs.size === 1) this.fillShared(thread);
    });
  }

  /** A placed attempt ended: its thread is freed (or stopped, when not reusable). */
  runEnded(attempt: PlacedRun, error: Error | null, reusable: boolean): void {
    const { thread } = attempt;
    thread.runs.delete(attempt.runId);
    thread.pingSentAt = 0;
    if (!reusable) {
      // Stopping it stops the attempts that share it too: its class no longer shares threads.
      if (thread.runs.size > 0) this.record(attempt.name).tainted = true;
      if (!thread.gone) thread.stop(error ?? new Error("stopped"), attempt.runId);
    } else if (thread.runs.size === 0) {
      if (thread.shared) thread.sharedUntil = performance.now();
      if (!thread.gone && !thread.niced) this.makeIdle(thread);
      else if (!thread.gone) thread.stop(error ?? new Error("stopped"));
    } else {
      // Room on a shared thread: waiting attempts that may share take it.
      this.fillShared(thread);
    }
  }

  /** A placed attempt's thread measured its run: the averages that decide sharing and growth. */
  runMeasured(name: string, ms: number): void {
    this.recentRunMs += (ms - this.recentRunMs) / 16;
    const wasShareable = this.shareable(name);
    const record = this.record(name);
    record.runs++;
    record.avgMs += (ms - record.avgMs) / Math.min(record.runs, 16);
    if (!wasShareable && this.shareable(name)) this.shareProven();
  }

  /**
   * A class proved short: threads that run attempts placed alone before it did, all of classes
   * that may share now, take waiting attempts beside them (instead of the waiters waiting for
   * those attempts to end, or for threads booted for them).
   */
  private shareProven(): void {
    for (const t of this.all) {
      if (t.shared || t.gone || t.blocked || t.niced || t.runs.size === 0) continue;
      // Loading a module (which only a thread with one run is excused for), or not answering for
      // a while (it may be blocked): no company, as in sharedWithRoom.
      if (isLoading(t.pause) || !answers(t, performance.now())) continue;
      let all = true;
      for (const run of t.runs.values()) if (!this.shareable(run.name)) all = false;
      if (!all) continue;
      t.shared = true;
      this.fillShared(t);
    }
  }

  /** Stops every thread (runs still going are reported as interrupted by the worker first). */
  async close(): Promise<void> {
    this.closed = true;
    this.pumpScheduled = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.idleWatch) clearInterval(this.idleWatch);
    for (const w of this.waiters.splice(0)) w.reject(new Error("the worker's thread pool is closed"));
    const threads = [...this.all];
    await Promise.all(
      threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            if (t.gone && !this.all.has(t)) return resolve();
            t.thread.once("exit", () => resolve());
            t.stop(new TaskInterruptedError("the worker is shutting down; the task will run again"));
            // One held in a native call ends only when that call returns: it must not keep the
            // process alive meanwhile (the runtime's stop waits for this close a bounded time).
            t.thread.unref();
          }),
      ),
    );
    // The inspector session it paused threads through ends with it (not when collected).
    await this.pauser.close();
  }
}

/**
 * One attempt placed on a thread, until it settles. A class rather than closures: it is created
 * for every attempt, and its methods are shared (the listener of its abort is the object
 * itself, through handleEvent).
 */
class PlacedRun implements Current {
  startedAt = performance.now();
  readonly name: string;
  private settled = false;
  private result: Uint8Array | undefined;
  private abortReason: Error | null = null;
  /** The thread acknowledged the abort. */
  private acked = false;
  private ackTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: ThreadPool,
    readonly thread: PoolThread,
    readonly runId: number,
    private readonly r: IsolatedRun,
    /** Chained, and not started yet (see ThreadPool.runChain): no timeout runs, no abort is pressed. */
    public waiting: boolean,
    private readonly resolve: (result: Uint8Array | undefined) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.name = r.run.name;
    if (!waiting) this.startTimeout();
  }

  private startTimeout(): void {
    const { abort, timeoutMs } = this.r;
    if (timeoutMs > 0) this.timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
  }

  /** The attempt was aborted: ask the thread to stop it, and stop the thread if it does not. */
  handleEvent(): void {
    const reason = this.r.abort.reason;
    const abortReason = reason instanceof Error ? reason : new Error(String(reason));
    this.abortReason = abortReason;
    this.thread.post({ t: "abort", runId: this.runId, reason: describeThrown(abortReason), kind: kindOf(abortReason) });
    // Chained and waiting: it will not start (the thread skips it when its turn comes).
    if (!this.waiting) this.pressAbort(abortReason);
  }

  /** A thread that does not acknowledge the abort is blocked (a synchronous loop): stop it now; and after the grace, in any case. */
  private pressAbort(abortReason: Error): void {
    if (!this.acked) this.ackTimer = setTimeout(() => this.finish(abortReason, false), ABORT_ACK_MS);
    this.graceTimer = setTimeout(() => this.finish(abortReason, false), Math.max(ABORT_ACK_MS, this.r.abortGraceMs));
  }

  onStarted(): void {
    if (!this.waiting || this.settled) return;
    this.waiting = false;
    this.startedAt = performance.now();
    this.thread.runningSince = this.startedAt;
    this.startTimeout();
    // Aborted while it waited, but started before the thread read the abort: it is stopped as any
    // other (and counts as started only if it was not aborted).
    if (this.abortReason) {
      this.pressAbort(this.abortReason);
      return;
    }
    try {
      this.r.onStart?.();
    } catch (error) {
      this.r.logger.error({ err: error }, "a chained attempt's start could not be recorded");
    }
  }

  onMessage(message: FromThread): void {
    switch (message.t) {
      case "progress":
        try {
          this.r.onProgress(message.fraction, message.message);
        } catch (error) {
          this.r.logger.warn({ err: error }, "a progress report from the task's thread was refused");
        }
        return;
      case "log":
        logAt(this.r.logger, message.level, message.bindings, message.message);
        return;
      case "abortAck":
        this.acked = true;
        if (this.ackTimer) clearTimeout(this.ackTimer);
        this.ackTimer = null;
        return;
      case "done":
        // Chained, and taken out of its chain by its abort before it started: it never ran.
        if (this.waiting) return this.finish(this.abortReason ?? new TaskInterruptedError("it did not start"), true);
        if (message.ok && !message.result) return this.onSucceeded(message.ms);
        this.pool.runMeasured(this.name, message.ms);
        // After an abort, the run ends with the abort's reason whatever the task did then.
        if (this.abortReason) this.finish(this.abortReason, true);
        else if (message.ok) {
          this.result = message.result;
          this.finish(null, true);
        } else this.finish(new ThreadTaskError(message.error, message.kind), true);
        return;
    }
  }

  onSucceeded(ms: number): void {
    this.pool.runMeasured(this.name, ms);
    // After an abort, the run ends with the abort's reason whatever the task did then.
    this.finish(this.abortReason, true);
  }

  onGone(error: Error): void {
    this.finish(this.abortReason ?? error, false);
  }

  onRefused(error: Error): void {
    this.finish(error, true);
  }

  onBlocked(blocked: boolean): void {
    this.r.onBlocked?.(blocked);
  }

  private finish(error: Error | null, reusable: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.waiting = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.r.abort.unlisten(this);
    this.pool.runEnded(this, error, reusable);
    if (error) this.reject(error);
    else this.resolve(this.result);
  }
}
