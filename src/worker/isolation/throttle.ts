import { randomBytes } from "node:crypto";
import type { Session } from "node:inspector";
import { createRequire } from "node:module";
import type { Logger } from "../../tasks/logger.ts";

/**
 * Pausing a task thread that runs synchronously (a `while (true) {}`, or long CPU work).
 *
 * No thread priority keeps a spinning thread from slowing the others on a machine with few cores:
 * at nice 19 and under SCHED_IDLE it still takes every cycle nothing else asks for at that very
 * moment, and the worker's round trips to its database pay for it. A paused thread takes none.
 *
 * A JavaScript loop cannot be interrupted from outside, except through the inspector: the
 * inspector delivers its messages to a busy thread by interrupting it, as a debugger does to
 * pause a loop. The pause is one `Runtime.evaluate` of an `Atomics.wait` on a cell the thread
 * was given when it booted; resuming is an `Atomics.notify` from here, without the inspector.
 * The inspector session is the process's own (`node:inspector`, no port is opened).
 */

/**
 * A thread's pause cell: shared memory, and the hidden global name the thread keeps it under.
 * Slot 0 is the pause; slot 1 counts the task modules the thread is loading (see `whileLoading`);
 * slot 2 the thread's own Atomics.wait calls under way (see `installPauseCell`).
 */
export interface PauseCell {
  readonly cell: Int32Array;
  readonly name: string;
}

export function newPauseCell(): PauseCell {
  return { cell: new Int32Array(new SharedArrayBuffer(12)), name: `__underway_pause_${randomBytes(8).toString("hex")}` };
}

/**
 * In the thread: marks the cell while `load` runs. Loading a module can block the thread for a
 * while (tsx's loader registers itself, the loader thread's answers are waited for
 * synchronously), and a pause evaluated in the middle of that can bring the thread down: the pool
 * does not pause a thread that is loading (see `isLoading`).
 */
export async function whileLoading<T>(cell: Int32Array, load: () => Promise<T>): Promise<T> {
  Atomics.add(cell, 1, 1);
  try {
    return await load();
  } finally {
    Atomics.sub(cell, 1, 1);
  }
}

/** Whether the thread is loading a module (read from the worker's thread, without asking it). */
export function isLoading(cell: PauseCell): boolean {
  return Atomics.load(cell.cell, 1) > 0;
}

/**
 * In the thread: keeps the cell under its name, not enumerable, not writable, not configurable,
 * so task code neither trips over it nor removes it.
 */
export function installPauseCell(cell: PauseCell): void {
  Object.defineProperty(globalThis, cell.name, { value: cell.cell, enumerable: false, writable: false, configurable: false });
  const shared = cell.cell;
  const wait = Atomics.wait;
  const load = Atomics.load;
  const add = Atomics.add;
  const sub = Atomics.sub;
  // Code in the thread that waits (Atomics.wait, as synchronous sleep helpers do) is counted in
  // slot 2: the inspector delivers the pause inside such a wait too, and a wait evaluated inside
  // another brings the whole process down (Node 20). A thread that waits takes no CPU anyway.
  const counted = {
    wait(array: Int32Array | BigInt64Array, index: number, value: number | bigint, timeout?: number) {
      add(shared, 2, 1);
      try {
        return (wait as (a: typeof array, i: number, v: typeof value, t?: number) => "ok" | "not-equal" | "timed-out")(array, index, value, timeout);
      } finally {
        sub(shared, 2, 1);
      }
    },
  }.wait;
  Object.defineProperty(Atomics, "wait", { value: counted, writable: true, enumerable: false, configurable: true });
  // The pause itself, bound now (task code that replaces Atomics.wait later does not change it),
  // and a no-op when it arrives inside one of the thread's own waits.
  Object.defineProperty(globalThis, `${cell.name}_wait`, {
    value: () => {
      if (load(shared, 2) === 0) wait(shared, 0, 1);
    },
    enumerable: false,
    writable: false,
    configurable: false,
  });
}

interface Attached {
  readonly cell: PauseCell;
  paused: boolean;
  /** Ids of evaluations sent to the thread and not answered yet. */
  readonly inFlight: Set<number>;
  /** Called when none is in flight any more. */
  drained: (() => void) | null;
}

/** How long a release waits for the thread's evaluations to end before it lets the thread be stopped anyway. */
const DRAIN_MS = 1_000;

/**
 * The process's inspector session over the worker threads it pauses. It is attached to the
 * process's threads (an inspector session with no domain enabled costs a thread nothing) only
 * while one of them is held.
 */
export class ThreadPauser {
  private session: Session | null = null;
  private unavailable = false;
  private closed = false;
  /** Releases still waiting for a thread's evaluations to end. */
  private readonly releasing = new Set<Promise<void>>();
  private readonly threads = new Map<number, Attached>();
  /** Inspector sessions of the process's threads, by thread id, while attached. */
  private readonly sessionIds = new Map<number, string>();
  /** Evaluations not answered yet: message id to what they were sent for. */
  private readonly inFlight = new Map<number, { attached: Attached; threadId: number }>();
  private nextId = 1;

  constructor(private readonly logger: Logger) {}

  /** Pauses the thread (it takes no CPU until `resume`). False where the inspector is not available. */
  pause(threadId: number, cell: PauseCell): boolean {
    const session = this.connect();
    if (!session) return false;
    let attached = this.threads.get(threadId);
    if (!attached) {
      attached = { cell, paused: false, inFlight: new Set(), drained: null };
      this.threads.set(threadId, attached);
      if (this.threads.size === 1) session.post("NodeWorker.enable", { waitForDebuggerOnStart: false }, () => undefined);
    }
    if (attached.paused) return true;
    attached.paused = true;
    // Set first: a resume that comes before the thread evaluates the wait turns it into a no-op.
    Atomics.store(cell.cell, 0, 1);
    const sessionId = this.sessionIds.get(threadId);
    if (sessionId !== undefined) this.evaluateWait(session, threadId, sessionId, attached);
    return true;
  }

  /** Lets the thread run again (it stays attached, to be paused again cheaply). */
  resume(threadId: number): void {
    const attached = this.threads.get(threadId);
    if (!attached?.paused) return;
    attached.paused = false;
    Atomics.store(attached.cell.cell, 0, 0);
    Atomics.notify(attached.cell.cell, 0);
  }

  /**
   * Resumes and forgets the thread: when it answers again, and before it is stopped. Resolves
   * once no evaluation of the pauser runs in the thread any more: a termination that arrives
   * while one runs ends that evaluation only, and the thread would go on.
   */
  release(threadId: number): Promise<void> {
    const attached = this.threads.get(threadId);
    if (!attached) return Promise.resolve();
    this.resume(threadId);
    this.threads.delete(threadId);
    const drained =
      attached.inFlight.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(done, DRAIN_MS);
            function done(): void {
              clearTimeout(timer);
              resolve();
            }
            attached.drained = done;
          });
    const released = drained.then(() => {
      this.releasing.delete(released);
      if (this.threads.size === 0 && this.session) {
        this.sessionIds.clear();
        this.session.post("NodeWorker.disable", {}, () => undefined);
      }
    });
    this.releasing.add(released);
    return released;
  }

  /**
   * Ends the inspector session, once no evaluation of the pauser runs in a thread any more (the
   * pool closed: it has no thread left to pause). Nothing is paused after this.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const threadId of [...this.threads.keys()]) void this.release(threadId);
    await Promise.all(this.releasing);
    const session = this.session;
    this.session = null;
    this.sessionIds.clear();
    this.inFlight.clear();
    session?.disconnect();
  }

  private evaluateWait(session: Session, threadId: number, sessionId: string, attached: Attached): void {
    const id = this.nextId++;
    attached.inFlight.add(id);
    this.inFlight.set(id, { attached, threadId });
    const message = JSON.stringify({
      id,
      method: "Runtime.evaluate",
      params: { expression: `globalThis[${JSON.stringify(`${attached.cell.name}_wait`)}]()`, silent: true },
    });
    session.post("NodeWorker.sendMessageToWorker", { sessionId, message }, () => undefined);
  }

  private answered(id: number): void {
    const attached = this.inFlight.get(id)?.attached;
    if (!attached) return;
    this.inFlight.delete(id);
    attached.inFlight.delete(id);
    if (attached.inFlight.size === 0) attached.drained?.();
  }

  private connect(): Session | null {
    if (this.session) return this.session;
    if (this.unavailable || this.closed) return null;
    try {
      // Loaded when first needed: a Node.js built without the inspector still runs tasks.
      const inspector = createRequire(import.meta.url)("node:inspector") as typeof import("node:inspector");
      const session = new inspector.Session();
      session.connect();
      session.on("NodeWorker.attachedToWorker", (event: { params: { sessionId: string; workerInfo: { title: string } } }) => {
        const { sessionId, workerInfo } = event.params;
        // The inspector's worker ids are its own; the title names the thread id: "[worker 3]".
        const threadId = Number(/^\[worker (\d+)\]/.exec(workerInfo.title)?.[1] ?? NaN);
        this.sessionIds.set(threadId, sessionId);
        const attached = this.threads.get(threadId);
        if (attached?.paused && Atomics.load(attached.cell.cell, 0) === 1) this.evaluateWait(session, threadId, sessionId, attached);
      });
      session.on("NodeWorker.receivedMessageFromWorker", (event: { params: { message: string } }) => {
        const { message } = event.params;
        // Answers only; the thread sends no events, as no domain is enabled.
        const id = /^\{"id":(\d+),/.exec(message)?.[1];
        if (id !== undefined) this.answered(Number(id));
      });
      session.on("NodeWorker.detachedFromWorker", (event: { params: { sessionId: string } }) => {
        for (const [threadId, sessionId] of this.sessionIds) {
          if (sessionId !== event.params.sessionId) continue;
          this.sessionIds.delete(threadId);
          // A thread gone answers nothing more.
          for (const [id, sent] of this.inFlight) if (sent.threadId === threadId) this.answered(id);
        }
      });
      this.session = session;
      return session;
    } catch (error) {
      this.unavailable = true;
      this.logger.warn({ err: error }, "the inspector is not available: task threads that run synchronously cannot be paused, only lowered in priority");
      return null;
    }
  }
}
