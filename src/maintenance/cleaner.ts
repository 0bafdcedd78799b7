import type { StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";
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

/** Retention: deletes tasks that ended long enough ago, in batches, on the maintenance leader. */
export class Cleaner extends PeriodicDuty<number> {
  constructor(private readonly options: CleanerOptions) {
    super({
      logger: options.logger,
      intervalMs: options.intervalMs ?? 60_000,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      failure: "deleting old tasks failed; will retry",
    });
    for (const key of ["succeededMs", "failedMs", "intervalMs"] as const) {
      const value = options[key];
      if (value !== undefined && (!Number.isInteger(value) || value < (key === "intervalMs" ? 1 : 0))) {
        throw new RangeError(`maintenance.retention.${key} must be a whole number of ms${key === "intervalMs" ? " >= 1" : " >= 0"}, got ${String(value)}`);
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
      if (n < params.limit) break;
    }
    if (total) this.options.logger.info({ deleted: total }, "deleted tasks past their retention");
    return total;
  }
}
