import type { RescuedDeadTask, StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";
import { PeriodicDuty } from "./periodic.ts";

export interface RescuerOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  /** How often to look for expired leases, ms. Default 5,000. */
  readonly intervalMs?: number;
  /** Most tasks rescued per statement. Default 1,000. */
  readonly batchSize?: number;
  /** Called when tasks became due again, so local workers look at once. */
  readonly onRescued?: () => void;
  /** Called with the tasks a pass ended dead (their attempts spent). */
  readonly onDead?: (tasks: readonly RescuedDeadTask[]) => void;
  /** Timed passes run only while this says so (the node leads maintenance). Default: always. */
  readonly isLeader?: () => boolean;
}

/**
 * Finds running tasks whose worker stopped renewing the lease (crashed, killed, hung) and makes
 * them due again, or dead when their attempts are spent. The attempt that was lost counts.
 */
export class Rescuer extends PeriodicDuty<{ retried: number; dead: number }> {
  constructor(private readonly options: RescuerOptions) {
    super({
      logger: options.logger,
      intervalMs: options.intervalMs ?? 5_000,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      failure: "rescuing expired leases failed; will retry",
      name: "rescue",
    });
  }

  /** One pass; returns how many tasks were made due again and how many ended dead. */
  async runOnce(): Promise<{ retried: number; dead: number }> {
    let retried = 0;
    let dead = 0;
    const limit = this.options.batchSize ?? 1_000;
    for (;;) {
      const r = await this.options.driver.taskRescueExpired({ limit });
      retried += r.retried;
      dead += r.dead;
      if (r.deadTasks?.length) this.options.onDead?.(r.deadTasks);
      if (r.retried + r.dead < limit || !(await this.nextBatch())) break;
    }
    if (retried + dead > 0) {
      this.options.logger.warn({ retried, dead }, "rescued tasks whose worker stopped renewing its lease");
      if (retried) this.options.onRescued?.();
    }
    return { retried, dead };
  }
}
