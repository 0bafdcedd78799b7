import type { RunOutcome, StorageDriver } from "../store/driver.ts";

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
    private readonly onWritten: (outcomes: readonly T[], rejected: ReadonlySet<string>) => void,
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

  /** Writes all pending outcomes; resolves when they and any write under way are stored. */
  async flush(): Promise<void> {
    this.scheduled = false;
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.write(batch);
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
    if (this.pending.length) await this.flush();
  }

  private async write(batch: T[]): Promise<void> {
    try {
      const { rejected } = await this.driver.taskCompleteMany(batch);
      this.onWritten(batch, new Set(rejected));
    } catch (error) {
      // The store is unreachable or failing: keep the outcomes and try again shortly. If this
      // process dies first, the leases expire and the tasks run again (at-least-once).
      this.onError(error, batch);
      await new Promise((r) => setTimeout(r, 500));
      this.pending.unshift(...batch);
    }
  }
}
