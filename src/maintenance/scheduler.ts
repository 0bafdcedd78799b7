import type { StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";
import type { ScheduleInfo } from "../tasks/schedules.ts";
import { cronTicks } from "./cron.ts";
import { PeriodicDuty } from "./periodic.ts";

export interface SchedulerOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  /** How often to look for due ticks, ms. Default 1,000. */
  readonly intervalMs?: number;
  /**
   * The latest tick due, seen later than this after its time, counts as missed (the store or
   * every node was down) and follows the schedule's missed-tick policy. Default 60,000.
   */
  readonly missedAfterMs?: number;
  /** Called when tasks were started, so local workers look at once. */
  readonly onFired?: () => void;
  readonly isLeader?: () => boolean;
}

export interface SchedulerPass {
  /** Tasks started for ticks. */
  readonly fired: number;
  /** Ticks skipped by the "skip" policy. */
  readonly skipped: number;
}

/**
 * Fires cron schedules on the maintenance leader. Every tick becomes at most one task, however
 * many nodes run this: the store moves a schedule's next tick with a compare-and-set and inserts
 * the task in the same transaction, so a node that read the same tick (a deposed leader, say)
 * finds it moved and inserts nothing. The database clock decides.
 */
export class Scheduler extends PeriodicDuty<SchedulerPass> {
  private readonly missedAfterMs: number;

  constructor(private readonly options: SchedulerOptions) {
    super({
      logger: options.logger,
      intervalMs: options.intervalMs ?? 1_000,
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      failure: "firing schedules failed; will retry",
      name: "schedule",
    });
    this.missedAfterMs = options.missedAfterMs ?? 60_000;
  }

  /** One pass over the due schedules. */
  async runOnce(): Promise<SchedulerPass> {
    const now = await this.options.driver.clockNow();
    let fired = 0;
    let skipped = 0;
    for (const schedule of await this.options.driver.scheduleListDue({ atMs: now, limit: 1_000 })) {
      const outcome = await this.fire(schedule, now).catch((error: unknown) => {
        // One bad schedule (a row edited by hand, a time zone this node lacks) must not stop the others.
        this.options.logger.error({ err: error, schedule: schedule.name }, "firing a schedule failed");
        return null;
      });
      if (outcome === "fired") fired++;
      else if (outcome === "skipped") skipped++;
    }
    if (fired) this.options.onFired?.();
    return { fired, skipped };
  }

  private async fire(schedule: ScheduleInfo, now: number): Promise<"fired" | "skipped" | "lost"> {
    const due = schedule.nextRunAt?.getTime();
    if (due === undefined) return "lost";
    let ticks;
    try {
      ticks = cronTicks(schedule.cron, schedule.timeZone, `schedule ${JSON.stringify(schedule.name)}`);
    } catch (error) {
      // A stored cron expression or time zone that cannot be read (a row changed by hand; every
      // definition is checked before it is stored) never will be: the schedule is paused, said
      // once, rather than failing again at every pass. Defining it again, or resuming it once
      // fixed, starts it again.
      const paused = await this.options.driver.scheduleSetPaused({ name: schedule.name, paused: true });
      if (paused) {
        this.options.logger.error({ err: error, schedule: schedule.name }, "a schedule's stored cron expression or time zone cannot be read; the schedule is paused");
      }
      return "lost";
    }
    // The latest tick that has come: one pass fires at most one task, for this tick. Earlier
    // ticks since the last pass are folded into it (a schedule faster than the pass interval
    // runs once a pass).
    const tick = Math.max(ticks.previous(now) ?? due, due);
    // Missed: even the latest tick came longer than missedAfterMs ago (the store or every node was down).
    const missed = now - tick > this.missedAfterMs;
    const run = !missed || schedule.missed === "once";
    const { advanced, taskId } = await this.options.driver.scheduleAdvance({
      name: schedule.name,
      expectedNextRunAtMs: due,
      nextRunAtMs: ticks.next(now),
      fireTickMs: run ? tick : null,
    });
    if (!advanced) return "lost"; // another node fired it, or it was paused meanwhile
    const at = new Date(tick).toISOString();
    if (!run) {
      this.options.logger.warn({ schedule: schedule.name, since: new Date(due).toISOString() }, "skipped missed ticks");
      return "skipped";
    }
    // The task it started: its id and type (it has no attempt yet).
    const started = { taskId, task: schedule.taskName };
    if (missed) this.options.logger.warn({ schedule: schedule.name, since: new Date(due).toISOString(), ...started }, "missed ticks: running once now");
    else if (now - due > this.missedAfterMs) {
      this.options.logger.warn({ schedule: schedule.name, since: new Date(due).toISOString(), tick: at, ...started }, "missed ticks: running the latest tick");
    } else this.options.logger.info({ schedule: schedule.name, tick: at, ...started }, "schedule fired");
    return "fired";
  }
}
