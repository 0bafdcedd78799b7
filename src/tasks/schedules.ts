/**
 * The vocabulary of recurring tasks (cron schedules), shared by the store, the scheduler duty and
 * the runtime. See docs/scheduling.md.
 */

/** What a schedule does with ticks it could not fire on time (the store was down, say). */
export type MissedTickPolicy = "once" | "skip";

export const MISSED_TICK_POLICIES: readonly MissedTickPolicy[] = ["once", "skip"];

/** A schedule as stored. */
export interface ScheduleInfo {
  readonly name: string;
  /** Five or six fields (seconds first when six), as croner reads them. */
  readonly cron: string;
  /** The IANA time zone the cron expression is read in. */
  readonly timeZone: string;
  readonly taskName: string;
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly missed: MissedTickPolicy;
  readonly paused: boolean;
  /** The next tick to fire; null when the expression never fires again. */
  readonly nextRunAt: Date | null;
  /** The last tick fired (skipped ticks do not count), if any. */
  readonly lastTick: Date | null;
  /** The task started for the last tick fired. */
  readonly lastTaskId: string | null;
}
