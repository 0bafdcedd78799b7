import type { Logger } from "../tasks/logger.ts";

/** A pass still running after this long (or three intervals, if longer) is reported once, ms. */
const SLOW_PASS_MS = 60_000;

/**
 * A maintenance duty run every `intervalMs` on the leading node: one pass at a time, failures
 * logged and tried again at the next tick. Subclasses say what one pass does.
 */
export abstract class PeriodicDuty<R> {
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<R> | null = null;
  private busySince = 0;
  private slowReported = false;
  /** Stopped: no pass begins, whoever nudges (an election won while the runtime stops, say). */
  private stopped = false;

  protected constructor(
    private readonly duty: { readonly logger: Logger; readonly intervalMs: number; readonly isLeader?: () => boolean; readonly failure: string; readonly name: string },
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
    if (this.busy) {
      this.reportSlowPass();
      return;
    }
    if (this.stopped || this.duty.isLeader?.() === false) return;
    try {
      this.busySince = Date.now();
      this.slowReported = false;
      this.busy = this.runOnce();
      await this.busy;
    } catch (error) {
      this.duty.logger.error({ err: error }, this.duty.failure);
    } finally {
      this.busy = null;
    }
  }

  /**
   * No pass begins while one runs: a pass the store never answers (a lock held elsewhere, a
   * connection cut without a reset) would stop the duty unseen. Said once per pass.
   */
  private reportSlowPass(): void {
    const runningMs = Date.now() - this.busySince;
    if (this.slowReported || runningMs < Math.max(SLOW_PASS_MS, 3 * this.duty.intervalMs)) return;
    this.slowReported = true;
    this.duty.logger.warn(
      { duty: this.duty.name, runningMs },
      `the ${this.duty.name} pass has run for ${Math.round(runningMs / 1000)} s and none begins until it ends: is the store answering?`,
    );
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
