import type { Logger } from "../tasks/logger.ts";

/**
 * A maintenance duty run every `intervalMs` on the leading node: one pass at a time, failures
 * logged and tried again at the next tick. Subclasses say what one pass does.
 */
export abstract class PeriodicDuty<R> {
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<R> | null = null;
  /** Stopped: no pass begins, whoever nudges (an election won while the runtime stops, say). */
  private stopped = false;

  protected constructor(
    private readonly duty: { readonly logger: Logger; readonly intervalMs: number; readonly isLeader?: () => boolean; readonly failure: string },
  ) {}

  /** One pass, whoever leads (tests and `nudge` call it). */
  abstract runOnce(): Promise<R>;

  start(runNow = false): void {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.duty.intervalMs);
    this.timer.unref();
    if (runNow) void this.tick();
  }

  /** A pass now, when leading (after winning an election, say). */
  nudge(): void {
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.busy || this.duty.isLeader?.() === false) return;
    try {
      this.busy = this.runOnce();
      await this.busy;
    } catch (error) {
      this.duty.logger.error({ err: error }, this.duty.failure);
    } finally {
      this.busy = null;
    }
  }

  /**
   * Between two batches of a pass: lets the event loop run (SQLite answers synchronously, so a
   * pass over a backlog of a million rows would hold every heartbeat, claim and request of the
   * process for seconds), and says whether to go on (false once the duty is stopping).
   */
  protected async nextBatch(): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    return !this.stopped;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.busy?.catch(() => undefined);
  }
}
