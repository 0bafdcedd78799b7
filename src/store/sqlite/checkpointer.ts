import { Worker } from "node:worker_threads";

/**
 * Every this many statements run by the store's connection, the checkpoint thread is asked to look
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
/** SQLite's default automatic checkpoint, restored when the thread is gone. */
const DEFAULT_PAGES = 1_000;
/** How long closing waits for the thread to close its connection before stopping it, ms. */
const CLOSE_WAIT_MS = 2_000;

/**
 * Moves the write-ahead log's checkpoints off the store's connection. In WAL mode, SQLite copies
 * the log back into the database file once it holds 1,000 pages, in the connection whose commit
 * crossed that mark, on the process's main thread: one commit in about 150 single-task inserts
 * paid a few milliseconds for it (its pages written and the file synced), about 40% of what single
 * inserts cost on average. A thread with its own connection does that copy instead, asked every
 * ASK_EVERY statements; the thread starts at the first ask, so a short-lived process (a CLI
 * command) never starts it. When the thread cannot run or fails, the connection checkpoints by
 * itself again, as SQLite does by default.
 */
export class Checkpointer {
  private statements = 0;
  private thread: Worker | null = null;
  private exited: Promise<void> | null = null;
  private failed = false;
  private closed = false;

  /** `setAutoCheckpoint`: sets the store connection's automatic checkpoint, in pages. */
  constructor(
    private readonly path: string,
    private readonly setAutoCheckpoint: (pages: number) => void,
  ) {}

  /** The store's connection ran a statement (or a transaction). */
  note(): void {
    if (++this.statements < ASK_EVERY) return;
    this.statements = 0;
    if (this.failed || this.closed) return;
    if (!this.thread) this.start();
    this.thread?.postMessage("checkpoint");
  }

  private start(): void {
    let thread: Worker;
    try {
      // No loader flags (the process may run TypeScript through one): the thread is plain JavaScript.
      thread = new Worker(new URL("./checkpoint-thread.mjs", import.meta.url), { workerData: { path: this.path }, execArgv: [] });
    } catch {
      this.failed = true;
      return;
    }
    thread.unref();
    this.thread = thread;
    this.setAutoCheckpoint(NET_PAGES);
    thread.on("message", (message: { t?: string }) => {
      if (message.t === "failed") this.fallBack();
    });
    // An error ends the thread too: "exit" follows.
    thread.on("error", () => this.fallBack());
    this.exited = new Promise<void>((resolve) =>
      thread.once("exit", () => {
        if (!this.closed) this.fallBack();
        resolve();
      }),
    );
  }

  /** The thread cannot checkpoint: the connection does it by itself again. */
  private fallBack(): void {
    if (this.failed) return;
    this.failed = true;
    if (!this.closed) this.setAutoCheckpoint(DEFAULT_PAGES);
  }

  /** Stops the thread once it closed its connection (before the store closes its own). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const thread = this.thread;
    if (!thread || !this.exited) return;
    thread.postMessage("close");
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), CLOSE_WAIT_MS);
    });
    if ((await Promise.race([this.exited, late])) === "late") await thread.terminate();
    clearTimeout(timer);
  }
}
