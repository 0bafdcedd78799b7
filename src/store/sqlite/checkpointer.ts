import { Worker } from "node:worker_threads";

/**
 * Every this many statements run by a store's connection, the checkpoint thread is asked to look
 * at the write-ahead log. Asking costs a message; a look with nothing to copy costs the thread a
 * few microseconds.
 */
const ASK_EVERY = 100;
/**
 * While the thread checkpoints, the connection's own automatic checkpoint waits for a log of this
 * many pages (SQLite's default is 1,000): a net for when the thread falls behind (it copies what
 * it can while commits go on; the log starts over only after a checkpoint that caught up).
 */
const NET_PAGES = 4_000;
/** SQLite's default automatic checkpoint, restored when the thread cannot do it. */
const DEFAULT_PAGES = 1_000;
/** How long closing waits for the thread to close its connection, ms. */
const CLOSE_WAIT_MS = 2_000;

type FromThread = { readonly t: "failed"; readonly path: string; readonly message: string } | { readonly t: "closed"; readonly id: number };

/**
 * The process's checkpoint thread, shared by every SQLite store of the process: one thread (about
 * 10 MB) however many stores are open, with one connection per database file in use.
 */
class CheckpointThread {
  private readonly worker: Worker;
  private readonly users = new Set<Checkpointer>();
  private readonly closing = new Map<number, () => void>();
  private nextId = 1;
  gone = false;

  constructor() {
    // The thread is plain JavaScript: none of the command line's loader flags (a loader given
    // through NODE_OPTIONS still loads; it only slows the thread's start).
    this.worker = new Worker(new URL("./checkpoint-thread.mjs", import.meta.url), { execArgv: [] });
    this.worker.on("message", (message: FromThread) => {
      if (message.t === "failed") {
        for (const user of this.users) if (user.path === message.path) user.fallBack();
      } else this.closing.get(message.id)?.();
    });
    // An error ends the thread: "exit" follows.
    this.worker.on("error", () => undefined);
    this.worker.once("exit", () => {
      this.gone = true;
      if (thread === this) thread = null;
      for (const user of this.users) user.fallBack();
      for (const done of this.closing.values()) done();
    });
    // Last, after every listener: a listener added to an unreferenced worker references it again.
    // It never keeps the process alive: the stores' connections need it only while it runs.
    this.worker.unref();
  }

  open(user: Checkpointer): void {
    this.users.add(user);
    this.worker.postMessage({ t: "open", path: user.path });
  }

  checkpoint(user: Checkpointer): void {
    this.worker.postMessage({ t: "checkpoint", path: user.path });
  }

  /** Resolves when the thread has let go of the store's file (or is gone, or after CLOSE_WAIT_MS). */
  close(user: Checkpointer): Promise<void> {
    this.users.delete(user);
    if (this.gone) return Promise.resolve();
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, CLOSE_WAIT_MS);
      const closing = this.closing;
      function done(): void {
        clearTimeout(timer);
        closing.delete(id);
        resolve();
      }
      this.closing.set(id, done);
      this.worker.postMessage({ t: "close", path: user.path, id });
    });
  }
}

let thread: CheckpointThread | null = null;

/**
 * Moves a store's write-ahead-log checkpoints off its connection. In WAL mode, SQLite copies the
 * log back into the database file once it holds 1,000 pages, in the connection whose commit
 * crossed that mark, on the process's main thread: one commit in about 150 single-task inserts
 * paid a few milliseconds for it (its pages written and the file synced). The process's checkpoint
 * thread does that copy instead, asked every ASK_EVERY statements; a store asks for the first time
 * after ASK_EVERY statements, so a short-lived process (a CLI command) never starts the thread.
 * When the thread cannot open the file, cannot start or fails, the store's connection checkpoints
 * by itself again, as SQLite does by default.
 */
export class Checkpointer {
  private statements = 0;
  private on: CheckpointThread | null = null;
  private failed = false;
  private closed = false;

  /** `setAutoCheckpoint`: sets the store connection's automatic checkpoint, in pages. */
  constructor(
    readonly path: string,
    private readonly setAutoCheckpoint: (pages: number) => void,
  ) {}

  /** The store's connection ran a statement (or a transaction). */
  note(): void {
    if (++this.statements < ASK_EVERY) return;
    this.statements = 0;
    if (this.failed || this.closed) return;
    if (!this.on) {
      try {
        thread ??= new CheckpointThread();
      } catch {
        this.failed = true;
        return;
      }
      this.on = thread;
      this.setAutoCheckpoint(NET_PAGES);
      this.on.open(this);
    }
    this.on.checkpoint(this);
  }

  /** The thread cannot checkpoint this store's file: its connection does it by itself again. */
  fallBack(): void {
    if (this.failed) return;
    this.failed = true;
    if (!this.closed) this.setAutoCheckpoint(DEFAULT_PAGES);
  }

  /** Lets go of the thread's connection to the file (before the store closes its own). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.on) await this.on.close(this);
  }
}
