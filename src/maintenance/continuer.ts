import type { StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";
import { PeriodicDuty } from "./periodic.ts";

export interface ContinuerOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  /** How often to look, ms. Default 1,000. */
  readonly intervalMs?: number;
  /** Called when continuations became due, so local workers look at once. */
  readonly onReleased?: () => void;
  readonly isLeader?: () => boolean;
  /** Edges taken per call to the store. Default 1,000. */
  readonly limit?: number;
}

/**
 * Starts continuations whose predecessors have ended. The runtime asks right after a task of its
 * own ends; this duty, on the leader, catches the rest: tasks ended by another node that crashed
 * before asking, by the rescuer, by a cancel from the command line, or deleted.
 */
export class Continuer extends PeriodicDuty<{ released: number; canceled: number }> {
  constructor(private readonly options: ContinuerOptions) {
    super({
      logger: options.logger,
      intervalMs: options.intervalMs ?? 1_000,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      failure: "starting continuations failed; will retry",
      name: "continuation",
    });
  }

  /** One pass; returns how many continuations became due and how many were canceled. */
  async runOnce(): Promise<{ released: number; canceled: number }> {
    let released = 0;
    let canceled = 0;
    const limit = this.options.limit ?? 1_000;
    for (;;) {
      const r = await this.options.driver.taskContinuationsResolve({ limit });
      released += r.released;
      canceled += r.canceled;
      // Until no edge is left to take: a call may take edges and change no child (counted down only).
      if (r.consumed === 0 || !(await this.nextBatch())) break;
    }
    if (released) this.options.onReleased?.();
    if (canceled) this.options.logger.info({ canceled }, "canceled continuations whose predecessor did not succeed");
    return { released, canceled };
  }
}
