/**
 * An isolated task's worker thread: a runtime of its own (no worker, no maintenance) on the
 * store of the worker's process, borrowed over a port; runs one attempt at a time as the worker
 * asks, and reports progress, logs and the outcome back. The worker enforces the limits from
 * outside (it can stop this thread at any moment), so nothing here has to be trusted to cooperate.
 */
import { readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { decodeParameters, TaskDeserializationError } from "../../codec/index.ts";
import { borrowStore } from "../../store/remote/borrower.ts";
import type { RemoteStoreInfo } from "../../store/remote/protocol.ts";
import { describeThrown, type ThrownInfo } from "../../tasks/error-info.ts";
import { TaskInterruptedError } from "../../tasks/errors/task-interrupted-error.ts";
import { TaskSecurityError } from "../../tasks/errors/task-security-error.ts";
import { UnknownTaskError } from "../../tasks/errors/unknown-task-error.ts";
import { UnrecoverableTaskError } from "../../tasks/errors/unrecoverable-task-error.ts";
import type { Logger } from "../../tasks/logger.ts";
import type { TaskContext, UserConnectionLike } from "../../tasks/types.ts";
import { executeInProcess } from "../../worker/executor.ts";
import { RunAbort } from "../../worker/run-abort.ts";
import { unpackRuns, type FailureKind, type FromThread, type LogLevel, type ThreadRun, type ToThread } from "../../worker/isolation/protocol.ts";
import type { UserConnectionFactory } from "../../worker/worker.ts";
import { Runtime, type RuntimeConfig, type RuntimeInternals } from "../runtime.ts";
import { importTaskModule, moduleUserConnections } from "../task-modules.ts";
import { installPauseCell, whileLoading } from "../../worker/isolation/throttle.ts";
import { bundledModule, type ThreadBundle } from "./thread-bundle.ts";
import { markTaskThread } from "./task-thread.ts";
import { register } from "node:module";
import { taskResultOf } from "../../tasks/result.ts";

/** What the worker's process hands a new thread. */
export interface ThreadBoot {
  readonly storePort: MessagePort;
  /** The worker's messages to this thread and this thread's to the worker (see `port`). */
  readonly hostPort: MessagePort;
  /** Where the pool holds this thread when it runs synchronously while others work. */
  readonly pauseCell: Int32Array;
  readonly pauseName: string;
  readonly store: RemoteStoreInfo;
  readonly secretKey: Uint8Array | null;
  /** A module whose `createThreadHost` builds the thread's runtime (the platform's), or null. */
  readonly hostModule: string | null;
  /** createRuntime's userConnectionModule, as a file: URL, or null. */
  readonly userConnectionModule: string | null;
  /** Whether the worker's process was given a userConnectionFactory function (which cannot come here). */
  readonly processHasUserConnections: boolean;
  readonly taskModules: readonly string[];
  /**
   * The modules that task classes known to the worker's process declare (`static taskModule`),
   * loaded at boot as well; one that fails to load here is left to its class's first attempt,
   * which then fails with the reason.
   */
  readonly classModules: readonly string[];
  readonly maxParameterBytes: number;
  /** The build this thread booted from (thread-bundle.ts), or null when it booted from the sources. */
  readonly bundle: Pick<ThreadBundle, "built" | "modules"> | null;
}

/** What a host module builds in the thread. */
export interface ThreadHost {
  readonly runtime: Runtime;
  readonly userConnectionFactory?: UserConnectionFactory;
}

export type CreateThreadHost = (config: RuntimeConfig, internals: RuntimeInternals) => Promise<ThreadHost>;

if (!parentPort) throw new Error("thread-main runs only as an isolated task's worker thread");
const boot = workerData as ThreadBoot;
/**
 * The worker's own channel to this thread. Taken out of workerData before any task code runs:
 * what task code posts on parentPort (which it can import) never reaches the worker as one of its
 * messages, and it cannot read the worker's messages either.
 */
const port: MessagePort = boot.hostPort;
Reflect.deleteProperty(workerData as object, "hostPort");
installPauseCell({ cell: boot.pauseCell, name: boot.pauseName });
/** Marked before any task code runs: a runtime with a worker is refused here (see refuseWorkerInTaskThread). */
const taskThread = markTaskThread();

let outbox: FromThread[] = [];
/**
 * A turn's messages go at once when this many have gathered, rather than at the turn's end: a
 * turn may run hundreds of chained attempts (ThreadPool.runChain), and should one of them then
 * block the thread, those whose ends were not sent run again when the worker stops it. So at most
 * 255 re-run, not the turn's whole chain. Measured within the noise of sending one message a turn.
 */
const THREAD_FLUSH_AT = 256;

/** Sends at the end of this turn, with whatever else the turn sends (one wake-up of the worker's thread), or earlier (THREAD_FLUSH_AT). */
function send(message: FromThread): void {
  outbox.push(message);
  // A log line goes at once (the task may be about to end its thread); the rest at the turn's end,
  // or when THREAD_FLUSH_AT have gathered.
  if (message.t === "log" || outbox.length >= THREAD_FLUSH_AT) flush();
  else if (outbox.length === 1) setImmediate(flush);
}

function flush(): void {
  const messages = outbox;
  outbox = [];
  if (messages.length === 0) return;
  if (messages.length === 1) return sendNow(messages[0]!);
  try {
    port.postMessage(packed(messages));
  } catch {
    // One of them the structured clone cannot carry: each on its own, that one as text.
    for (const m of messages) sendNow(m);
  }
}

/** One message for a turn's messages: the chained starts, and the attempts that succeeded and returned nothing, packed. */
function packed(messages: readonly FromThread[]): FromThread {
  const started: number[] = [];
  const then: FromThread[] = [];
  const runIds: number[] = [];
  const ms: number[] = [];
  for (const m of messages) {
    if (m.t === "done" && m.ok && m.result === undefined) {
      runIds.push(m.runId);
      ms.push(m.ms);
    } else if (m.t === "started") started.push(m.runId);
    else then.push(m);
  }
  return runIds.length > 0 || started.length > 0 ? { t: "packed", started, then, runIds, ms } : { t: "many", messages: then };
}

function sendNow(message: FromThread): void {
  try {
    port.postMessage(message);
  } catch {
    // Something in a log line the structured clone cannot carry: send it as text.
    if (message.t === "log") {
      port.postMessage({ ...message, bindings: { detail: String(JSON.stringify(message.bindings, safeReplacer())) } } satisfies FromThread);
    }
  }
}

function safeReplacer(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "function") return `[function ${value.name}]`;
    if (value && typeof value === "object") {
      if (seen.has(value)) return "[circular]";
      seen.add(value);
    }
    return value;
  };
}

/** A logger whose lines go to the worker's logger, with the task's bindings there. */
function portLogger(runId: number | null, bindings: Record<string, unknown>): Logger {
  return {
    debug: portLog(runId, bindings, "debug"),
    info: portLog(runId, bindings, "info"),
    warn: portLog(runId, bindings, "warn"),
    error: portLog(runId, bindings, "error"),
    child(more) {
      return portLogger(runId, { ...bindings, ...more });
    },
  };
}

/** One level of portLogger (a function at module level: one is made per attempt, and closures declared inside would be renamed on every call under loaders that keep names). */
function portLog(runId: number | null, bindings: Record<string, unknown>, level: LogLevel): (objectOrMessage: object | string, message?: string) => void {
  return (objectOrMessage, message) => {
    if (typeof objectOrMessage === "string") send({ t: "log", runId, level, bindings, message: objectOrMessage });
    else send({ t: "log", runId, level, bindings: { ...bindings, ...(objectOrMessage as Record<string, unknown>) }, message: message ?? "" });
  };
}

/** The thread's own runtime reports its start-up at debug: the worker's process already said it. */
function quieter(logger: Logger): Logger {
  return { ...logger, info: logger.debug };
}

const config: RuntimeConfig = {
  db: borrowStore(boot.storePort, boot.store),
  worker: false,
  maintenance: false,
  logger: quieter(portLogger(null, {})),
  maxParameterBytes: boot.maxParameterBytes,
};
const internals: RuntimeInternals = boot.secretKey ? { secretKey: Buffer.from(boot.secretKey) } : {};
let host: ThreadHost;
/** Where the thread imports a module from: the bundle's copy of one of underway's sources, or the module itself. */
async function importable(url: string): Promise<string> {
  const bundled = boot.bundle ? bundledModule(boot.bundle, url) : null;
  if (bundled) return bundled;
  await typescriptLoader();
  return url;
}

const LOADER = Symbol.for("underway.typescriptLoader");

/**
 * tsx's loader as `node --import tsx` registers it, which the thread does not inherit (see
 * worker/isolation/exec-argv.ts): its require hooks (a TypeScript module outside any package of
 * type "module" is loaded through them), then its import hooks. (The package's own entry would
 * register the import hooks as well in a thread on some versions of Node: twice with ours.)
 */
async function registerTsx(): Promise<void> {
  // No typings of its own: imported for its effect.
  await import("tsx/cjs" as string);
  const { register: registerImports } = (await import("tsx/esm/api")) as { register(): unknown };
  registerImports();
}

/**
 * A module from outside the bundle (an application's task module) may be TypeScript, and may
 * import underway's sources: register tsx's loader first (once; every caller waits for it), and,
 * when booted from the bundle, the hooks that point such imports at the bundle's copies.
 */
function typescriptLoader(): Promise<void> {
  const flags = globalThis as Record<symbol, unknown>;
  flags[LOADER] ??= registerTsx().then(() => {
    if (boot.bundle) register(new URL("./bundle-hooks.mjs", import.meta.url), { data: boot.bundle });
  });
  return flags[LOADER] as Promise<void>;
}

if (boot.hostModule) {
  const { createThreadHost } = (await import(await importable(boot.hostModule))) as { createThreadHost: CreateThreadHost };
  host = await createThreadHost(config, internals);
} else {
  const runtime = new Runtime(config, internals);
  await runtime.start();
  host = { runtime };
}
if (!host.userConnectionFactory && boot.userConnectionModule) {
  host = { ...host, userConnectionFactory: moduleUserConnections(boot.userConnectionModule, async (url) => import(await importable(url))) };
}

const modules = new Map<string, Promise<void>>();
/** Modules whose classes are registered: nothing to wait for. */
const loaded = new Set<string>();
function loadModule(url: string): Promise<void> {
  let loading = modules.get(url);
  if (!loading) {
    const attempt = whileLoading(boot.pauseCell, () => {
      taskThread.loading.add(url);
      return importable(url)
        .then((target) => importTaskModule(target).catch((error: unknown) => Promise.reject(namingModule(error, target, url))))
        .finally(() => taskThread.loading.delete(url));
    }).then((classes) => {
      for (const c of classes) host.runtime.registry.register(c, url, url);
      loaded.add(url);
    });
    // A load that failed is not kept: the next attempt of its tasks on this thread loads it again
    // (a module being deployed, a file not there yet), rather than failing with the first error for
    // as long as the thread lives.
    attempt.catch(() => {
      if (modules.get(url) === attempt) modules.delete(url);
    });
    modules.set(url, attempt);
    loading = attempt;
  }
  return loading;
}

/**
 * A task module's load error names the module as the application knows it: the build's copy of
 * it (thread-bundle.ts), which the thread imported, is a file under underway's cache that the
 * application never wrote.
 */
function namingModule(error: unknown, imported: string, url: string): unknown {
  if (imported === url || !(error instanceof Error)) return error;
  const builtPath = fileURLToPath(imported);
  const sourcePath = fileURLToPath(url);
  const named = new Error(error.message.replaceAll(imported, url).replaceAll(builtPath, sourcePath), { cause: error.cause ?? error });
  named.name = error.name;
  return named;
}

for (const url of boot.taskModules) await loadModule(url);
for (const url of boot.classModules) await loadModule(url).catch(() => undefined);

/** Does nothing: run once as the thread boots (see warmRunPath). */
class WarmUpRun {
  run(parameters: unknown): unknown {
    return parameters;
  }
}

/**
 * Each step of an attempt's path costs milliseconds the first time it runs (the task scope's async
 * hooks enabled, the executor's code; the codec was warmed as the thread's runtime started): the
 * thread takes them once as it boots, by running a no-op class through them, rather than its
 * first attempt.
 */
async function warmRunPath(): Promise<void> {
  const abort = new RunAbort();
  const context: TaskContext = {
    get signal() {
      return abort.signal;
    },
    attempt: 1,
    maxAttempts: 1,
    taskId: "0",
    taskName: "WarmUpRun",
    logger: portLogger(null, {}),
    reportProgress: () => undefined,
  };
  const parameters = decodeParameters(new Uint8Array([0xc0]));
  taskResultOf(await executeInProcess({ taskClass: WarmUpRun, parameters, context, abort, timeoutMs: 0, userConnection: null, scope: { runtime: host.runtime } }));
}
await warmRunPath();

const running = new Map<number, RunAbort>();
/** Chained attempts (sent with `after`) that have not started, by the attempt each waits for. */
const chained = new Map<number, [number, ThreadRun, RunAbort]>();
/** The attempt each of those waits for. */
const predecessorOf = new Map<number, number>();

/**
 * The thread's time as a share of each attempt running on it: it advances by the time passed
 * divided by how many attempts were running meanwhile (between a start and an end that number is
 * fixed). What an attempt took of it, end minus start, is the time it reports: its own time when
 * it ran alone, its share when others ran beside it. Wall time would count the others' work, and
 * every message and collection in between: at concurrency 50 the benchmark's no-op class read
 * averages of 0.25 to 9.3 ms, so it seemed not to barely run whenever many of its attempts shared
 * a thread, and the pool spread it over a second thread, which warmed a heap of its own. (In a
 * script holding SQLite's page cache at 4 MB, the worker's RSS grew 11-20% from 50,000 to 200,000
 * tasks run; -2% to +6% measured this way.)
 */
let sharedClock = 0;
let sharedClockAt = performance.now();
let executing = 0;
function sharedNow(): number {
  const now = performance.now();
  if (executing > 0) sharedClock += (now - sharedClockAt) / executing;
  sharedClockAt = now;
  return sharedClock;
}

function kindOf(error: unknown): FailureKind {
  try {
    if (error instanceof UnrecoverableTaskError) return "unrecoverable";
    if (error instanceof TaskSecurityError) return "security";
    if (error instanceof TaskDeserializationError) return "deserialization";
    if (error instanceof TaskInterruptedError) return "interrupted";
  } catch {
    // A revoked proxy throws even on instanceof: an ordinary failure.
  }
  return "other";
}

function reasonFrom(info: ThrownInfo, kind: FailureKind): Error {
  if (kind === "interrupted") return new TaskInterruptedError(info.message);
  const error = new Error(info.message);
  error.name = info.name;
  return error;
}

/** An attempt the worker sent: known (its abort can find it) from now, before it starts. */
function admit(runId: number): RunAbort {
  const abort = new RunAbort();
  running.set(runId, abort);
  return abort;
}

async function execute(runId: number, run: ThreadRun, abort: RunAbort): Promise<void> {
  // The run's time, which decides whether its class shares threads, leaves out the first load of
  // its module: a class whose module takes long to load is not a long-running class.
  let began = sharedNow();
  let firstSliceMs = 0;
  executing++;
  try {
    const parameters = decodeParameters(run.parameters);
    if (run.module && !loaded.has(run.module)) await loadModule(run.module);
    const { registry } = host.runtime;
    const registered = registry.resolveRegistered(run.name);
    const entry = registered !== null ? registered : await registry.resolveForRun(run.name);
    if (!entry) throw new UnknownTaskError(run.name, host.runtime.registry.names());
    began = sharedNow();
    let userConnection: UserConnectionLike | null = null;
    if (run.withUserConnection) {
      if (!run.initiator) throw new TaskSecurityError("the task needs a user connection but has no initiator");
      if (!host.userConnectionFactory) {
        throw new Error(
          boot.processHasUserConnections
            ? "the userConnectionFactory given to createRuntime is a function of the worker's process, and task threads cannot call it: " +
                "give createRuntime a userConnectionModule (a module exporting userConnectionFactory) for threads, " +
                `or run ${run.name} on the worker's event loop (static taskOptions = { isolation: "none" }, trusted code only)`
            : "this runtime has no UserConnection factory: give createRuntime a userConnectionModule (a module exporting userConnectionFactory)",
        );
      }
      userConnection = await host.userConnectionFactory(run.initiator, { id: run.id, name: run.name });
    }
    const context: TaskContext = {
      get signal() {
        return abort.signal;
      },
      attempt: run.attempt,
      maxAttempts: run.maxAttempts,
      taskId: run.id,
      taskName: run.name,
      logger: portLogger(runId, {}),
      reportProgress(fraction, message) {
        if (typeof fraction !== "number" || !(fraction >= 0 && fraction <= 1)) {
          throw new RangeError(`reportProgress: fraction must be a number from 0 to 1, got ${String(fraction)}`);
        }
        send({ t: "progress", runId, fraction, message: message === undefined || message === null ? null : String(message).slice(0, 500) });
      },
    };
    // Its first slice, up to its first await, runs before anything else on the thread can: its
    // own time exactly. It counts whole, so one long synchronous stretch among many attempts (of
    // classes that barely run) is not divided among them.
    const sliceFrom = performance.now();
    const outcome = executeInProcess({
      taskClass: entry.taskClass,
      parameters,
      context,
      abort,
      timeoutMs: 0,
      userConnection,
      scope: { runtime: host.runtime, ...(run.initiator ? { user: run.initiator } : {}) },
      // Its end is told once its code has ended: until then, its task is not queued again (a
      // canceled one is `stopping`) and the pool stops the thread after the abort's grace.
      awaitCodeAfterAbort: true,
    });
    firstSliceMs = performance.now() - sliceFrom;
    const returned = await outcome;
    // Encoded here: a result that cannot be stored fails the attempt like a thrown error.
    send({ t: "done", runId, ms: Math.max(firstSliceMs, sharedNow() - began), ok: true, ...taskResultOf(returned) });
  } catch (error) {
    send({ t: "done", runId, ms: Math.max(firstSliceMs, sharedNow() - began), ok: false, error: describeThrown(error), kind: kindOf(error) });
  } finally {
    sharedNow();
    executing--;
    running.delete(runId);
    // The attempt chained to this one takes its slot: reported started with the turn's other
    // messages (unless its abort came first: it is skipped then), and run. (Should it never
    // yield, the turn's messages not sent yet (THREAD_FLUSH_AT) are not sent: as on any shared
    // thread, the worker stops the thread after a second, and the attempts on it whose ends it
    // did not hear of run again.)
    const next = chained.get(runId);
    if (next) {
      chained.delete(runId);
      predecessorOf.delete(next[0]);
      if (!next[2].aborted) send({ t: "started", runId: next[0] });
      void execute(...next);
    }
  }
}

/**
 * Takes a chained attempt that has not started out of its chain at once (the one after it now
 * waits for the one before it), ended with `reason` without running. False when it is not waiting.
 */
function unchain(runId: number, reason: Error): boolean {
  const predecessor = predecessorOf.get(runId);
  if (predecessor === undefined) return false;
  predecessorOf.delete(runId);
  chained.delete(predecessor);
  const next = chained.get(runId);
  if (next) {
    chained.delete(runId);
    chained.set(predecessor, next);
    predecessorOf.set(next[0], predecessor);
  }
  running.delete(runId);
  send({ t: "done", runId, ms: 0, ok: false, error: describeThrown(reason), kind: kindOf(reason) });
  return true;
}

/** Runs an attempt the worker sent now, or once the attempt it is chained to has ended. */
function startOrChain(runId: number, run: ThreadRun, abort: RunAbort, after: number): void {
  if (after !== 0 && running.has(after)) {
    chained.set(after, [runId, run, abort]);
    predecessorOf.set(runId, after);
  } else {
    if (after !== 0) send({ t: "started", runId });
    void execute(runId, run, abort);
  }
}

port.on("message", function onMessage(message: ToThread): void {
  if (message.t === "packed") {
    // Every attempt of the message is known before any starts (a registered class's run starts
    // at once): an abort sent with it finds it and keeps it from starting, and no task's code
    // runs before the rest of the message is read.
    const runs: [number, ThreadRun, RunAbort, number][] = [];
    unpackRuns(message.runs, (runId, run, after) => runs.push([runId, run, admit(runId), after]));
    for (const m of message.then) onMessage(m);
    for (const [runId, run, abort, after] of runs) startOrChain(runId, run, abort, after);
  } else if (message.t === "many") {
    for (const m of message.messages) onMessage(m);
  } else if (message.t === "ping") {
    send({ t: "pong" });
  } else if (message.t === "run") {
    startOrChain(message.runId, message.run, admit(message.runId), message.after ?? 0);
  } else if (message.t === "abort") {
    // Acknowledged before the task's abort listeners run: their cleanup may take a while, and the
    // worker stops a thread whose acknowledgement does not come (ABORT_ACK_MS).
    send({ t: "abortAck", runId: message.runId });
    flush();
    const reason = reasonFrom(message.reason, message.kind);
    if (!unchain(message.runId, reason)) running.get(message.runId)?.abort(reason);
  }
});
send({ t: "ready", tid: osThreadId() });

/** This thread's id in the OS, from /proc (Linux); null where there is none. */
function osThreadId(): number | null {
  try {
    const match = /\/task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
