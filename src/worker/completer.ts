import type { CompleteResult, RunOutcome, StorageDriver } from "../store/driver.ts";

/**
 * Collects run outcomes and writes them in batches: everything that finished during one turn of
 * the event loop is recorded in one transaction.
 */
export class Completer<T extends RunOutcome = RunOutcome> {
  private pending: T[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;

  constructor(
    private readonly driver: StorageDriver,
    private readonly onWritten: (outcomes: readonly T[], rejected: ReadonlySet<string>, continuations: CompleteResult["continuations"]) => void,
    private readonly onError: (error: unknown, outcomes: readonly T[]) => void,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  add(outcome: T): void {
    this.pending.push(outcome);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /**
   * Writes all pending outcomes; resolves when they and any write under way are stored. While
   * running, a failing store is retried for as long as it takes; with `giveUpAfter` (at shutdown)
   * the outcomes are dropped after that many failed writes: their leases expire and the tasks run
   * again elsewhere (at-least-once).
   */
  async flush(giveUpAfter = Infinity): Promise<void> {
    this.scheduled = false;
    let failures = 0;
    for (;;) {
      while (this.flushing) await this.flushing;
      if (this.pending.length === 0) return;
      const batch = this.pending;
      this.pending = [];
      const write = this.write(batch);
      this.flushing = write.then(() => undefined);
      let ok: boolean;
      try {
        ok = await write;
      } finally {
        this.flushing = null;
      }
      if (ok) continue;
      if (++failures >= giveUpAfter) {
        this.pending = [];
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** One write; false (the outcomes back in front of the queue) when the store failed. */
  private async write(batch: T[]): Promise<boolean> {
    try {
      const { rejected, continuations } = await this.driver.taskCompleteMany(batch);
      this.onWritten(batch, new Set(rejected), continuations);
      return true;
    } catch (error) {
      this.onError(error, batch);
      this.pending.unshift(...batch);
      return false;
    }
  }
}
