/**
 * Cron expressions with a time zone (croner), checked with errors that name what was wrong.
 * croner is loaded with the first expression: a task thread, which every process boots several
 * of, seldom reads one.
 */
import { createRequire } from "node:module";
import type { Cron } from "croner";

let croner: typeof import("croner") | null = null;

/** A checked cron expression in its time zone. */
export interface CronTicks {
  /** The first tick strictly after `afterMs`, ms; null when the expression never fires again. */
  next(afterMs: number): number | null;
  /** The last tick at or before `atMs`, ms; null when there is none. */
  previous(atMs: number): number | null;
}

/** Checks an IANA time zone name; throws naming it when the runtime does not know it. */
export function checkTimeZone(timeZone: unknown, what: string): string {
  if (typeof timeZone !== "string" || timeZone.length === 0) {
    throw new TypeError(`${what}: timeZone must be an IANA time zone name such as "Europe/Berlin" or "UTC", got ${JSON.stringify(timeZone)}`);
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch (error) {
    throw new RangeError(`${what}: unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as "Europe/Berlin" or "UTC"`, { cause: error });
  }
  return timeZone;
}

/** Parses `expression` read in `timeZone`; `what` names the schedule in errors. */
export function cronTicks(expression: unknown, timeZone: unknown, what: string): CronTicks {
  const zone = checkTimeZone(timeZone, what);
  if (typeof expression !== "string" || expression.trim().length === 0) {
    throw new TypeError(`${what}: cron must be a cron expression such as "0 2 * * *", got ${JSON.stringify(expression)}`);
  }
  croner ??= createRequire(import.meta.url)("croner") as typeof import("croner");
  let cron: Cron;
  try {
    // 5 fields, or 6 with seconds first: no year field (a past year would never fire).
    cron = new croner.Cron(expression, { timezone: zone, paused: true, mode: "5-or-6-parts" });
  } catch (error) {
    throw new RangeError(`${what}: bad cron expression ${JSON.stringify(expression)}: ${(error as Error).message}`, { cause: error });
  }
  return {
    next: (afterMs) => cron.nextRun(new Date(afterMs))?.getTime() ?? null,
    previous: (atMs) => cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime() ?? null,
  };
}
