import type { StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";
import { checkTimerMs } from "../tasks/registry.ts";
import { PeriodicDuty } from "./periodic.ts";

export interface RetentionOptions {
  /** How long succeeded tasks are kept, ms. Default 7 days. */
  readonly succeededMs?: number;
  /** How long dead and canceled tasks are kept, ms. Default 30 days. */
  readonly failedMs?: number;
  /** How often to look, ms. Default 60,000. */
  readonly intervalMs?: number;
}

export interface CleanerOptions extends RetentionOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  readonly isLeader?: () => boolean;
}

const DAY = 24 * 60 * 60 * 1000;
/** The longest retention: 100 years (keep for ever: `retention: false`). */
const MAX_AGE_MS = 36_525 * DAY;

/** Retention: deletes tasks that ended long enough ago, in batches, on the maintenance leader. */
export class Cleaner extends PeriodicDuty<number> {
  constructor(private readonly options: CleanerOptions) {
    super({
      logger: options.logger,
      intervalMs: options.intervalMs ?? 60_000,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      failure: "deleting old tasks failed; will retry",
      name: "retention",
    });
    if (options.intervalMs !== undefined) checkTimerMs(options.intervalMs, "maintenance.retention.intervalMs");
    for (const key of ["succeededMs", "failedMs"] as const) {
      const value = options[key];
      // Both stores must be able to subtract the age from now: PostgreSQL's timestamps end at 4713 BC.
      if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_AGE_MS)) {
        throw new RangeError(`maintenance.retention.${key} must be a whole number of ms from 0 to ${MAX_AGE_MS} (100 years), got ${String(value)}`);
      }
    }
  }

  /** One pass; returns how many tasks were deleted. */
  async runOnce(): Promise<number> {
    const params = {
      succeededAgeMs: this.options.succeededMs ?? 7 * DAY,
      failedAgeMs: this.options.failedMs ?? 30 * DAY,
      limit: 1_000,
    };
    let total = 0;
    for (;;) {
      const n = await this.options.driver.taskDeleteFinished(params);
      total += n;
      if (n < params.limit || !(await this.nextBatch())) break;
    }
    if (total) this.options.logger.info({ deleted: total }, "deleted tasks past their retention");
    return total;
  }
}
