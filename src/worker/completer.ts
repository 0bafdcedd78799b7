import type { CompleteResult, RunOutcome, StorageDriver } from "../store/driver.ts";

/** A write this recent means outcomes are flowing: the next batch waits COALESCE_MS for more. */
const BUSY_MS = 5;
const COALESCE_MS = 1;
/** Most outcomes written in one statement: a batch's cost grows with it, and it holds its rows' locks. */
const MAX_COMPLETE_BATCH = 1_000;

/**
 * Collects run outcomes and writes them in batches: everything that finished during one turn of
 * the event loop is recorded in one transaction. While outcomes keep coming (runs in threads end
 * one message at a time), a batch waits a millisecond for more: a transaction per outcome would
 * cost more than the runs. A batch of `eagerAt` outcomes waits for no more.
 */
export class Completer<T extends RunOutcome = RunOutcome> {
  private pending: T[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private lastWriteAt = -Infinity;
  /** Outcomes in the write under way. */
  private writing = 0;
  /** The write under way's outcomes (see unstored). */
  private inWrite: readonly T[] = [];

  /** The coalescing wait under way (see add). */
  private timer: NodeJS.Timeout | null = null;
  /**
   * Most outcomes in the next write: halved by each failed write, so that an outcome the store
   * refuses (a row it cannot take) ends up written alone, and back at the end of the queue, while
   * the others are stored; doubled again by each write that succeeds.
   */
  private cap = MAX_COMPLETE_BATCH;

  constructor(
    private readonly driver: StorageDriver,
    private readonly onWritten: (outcomes: readonly T[], rejected: ReadonlySet<string>, continuations: CompleteResult["continuations"]) => void,
    private readonly onError: (error: unknown, outcomes: readonly T[]) => void,
    /**
     * Outcomes that make a batch big enough to write without waiting for more (the worker's
     * claims wait for outcomes that pile up: a millisecond's wait for more would idle it).
     */
    private readonly eagerAt = Infinity,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** Outcomes not stored yet: waiting, and in the write under way. */
  get backlog(): number {
    return this.pending.length + this.writing;
  }

  /** The outcomes not stored yet (see backlog): their tasks' leases must be kept alive until they are. */
  unstored(): T[] {
    return this.inWrite.length === 0 ? [...this.pending] : [...this.inWrite, ...this.pending];
  }

  add(outcome: T): void {
    this.pending.push(outcome);
    if (this.scheduled) {
      // Waiting for more, and enough came: written on the next turn.
      if (this.timer && this.pending.length >= this.eagerAt) {
        clearTimeout(this.timer);
        this.timer = null;
        setImmediate(() => void this.flush());
      }
      return;
    }
    this.scheduled = true;
    if (performance.now() - this.lastWriteAt < BUSY_MS && this.pending.length < this.eagerAt) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, COALESCE_MS);
    } else setImmediate(() => void this.flush());
  }

  /**
   * Writes all pending outcomes, at most MAX_COMPLETE_BATCH per statement; resolves when they and
   * any write under way are stored. While running, a failing store is retried for as long as it
   * takes; with `giveUpAfter` (at shutdown) the outcomes are dropped after that many failed
   * writes in a row: their leases expire and the tasks run again elsewhere (at-least-once).
   */
  async flush(giveUpAfter = Infinity): Promise<void> {
    this.scheduled = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let failures = 0;
    for (;;) {
      while (this.flushing) await this.flushing;
      if (this.pending.length === 0) return;
      const batch = this.pending.length > this.cap ? this.pending.splice(0, this.cap) : this.pending;
      if (batch === this.pending) this.pending = [];
      const write = this.write(batch);
      this.flushing = write.then(() => undefined);
      let ok: boolean;
      try {
        ok = await write;
      } finally {
        this.flushing = null;
      }
      if (ok) {
        failures = 0;
        continue;
      }
      if (++failures >= giveUpAfter) {
        this.pending = [];
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * One write; false when the store failed: the outcomes go back in front of the queue, or, when
   * the write held one alone, behind the others, so that an outcome the store always refuses does
   * not hold back the rest.
   */
  private async write(batch: T[]): Promise<boolean> {
    this.lastWriteAt = performance.now();
    this.writing = batch.length;
    this.inWrite = batch;
    let written;
    try {
      written = await this.driver.taskCompleteMany(batch);
    } catch (error) {
      this.writing = 0;
      this.inWrite = [];
      // Back in the queue before anything else runs: the batch must not be lost, whatever the
      // report of the failure does.
      if (batch.length > 1) {
        this.cap = Math.ceil(batch.length / 2);
        this.pending.unshift(...batch);
      } else this.pending.push(...batch);
      try {
        this.onError(error, batch);
      } catch {
        // A report that fails changes nothing of the batch's fate.
      }
      return false;
    }
    this.writing = 0;
    this.inWrite = [];
    if (this.cap < MAX_COMPLETE_BATCH) this.cap = Math.min(MAX_COMPLETE_BATCH, this.cap * 2);
    // Stored: what the listeners do with it can no longer make it be written again.
    try {
      this.onWritten(batch, new Set(written.rejected), written.continuations);
    } catch {
      // The worker's listeners report their own failures (see Worker.emit).
    }
    return true;
  }
}
