/**
 * Schedules a package declares (the "schedules" of underway-package.json): recurring tasks of the
 * package's own task classes. Publish checks them against the compiled build before storing it,
 * and defines them in the store (runtime.defineSchedule) once the build is stored; each newer
 * build defines them again, so a changed cron expression, parameters or class options take effect,
 * and the schedules an older build declared that the new one does not are deleted.
 *
 * In the store a package's schedule is named `<Package>.<name>`, so two packages never share one.
 */
import type { Runtime } from "../../runtime/runtime.ts";
import { scheduleRow, type ScheduleDefinition } from "../../runtime/schedules.ts";
import type { StartableTaskClass } from "../../tasks/task.ts";
import { MISSED_TICK_POLICIES, type MissedTickPolicy } from "../../tasks/schedules.ts";
import type { LoadedPackage } from "./compiler/index.ts";
import { taskClassesByName, type PackageLoader } from "./loader.ts";

/** One schedule of a package, as declared. */
export interface PackageSchedule {
  /** Unique in the package: letters, digits and _ . : - (at most 99). Stored as `<Package>.<name>`. */
  readonly name: string;
  /** A cron expression: five fields (minute first), or six with seconds first. */
  readonly cron: string;
  /** The IANA time zone the expression is read in. Default "UTC". */
  readonly timeZone?: string;
  /** The task name of a class of the package (its static taskName, else its class name). */
  readonly task: string;
  /** The parameters of every tick's task (JSON). Default {}. */
  readonly parameters?: unknown;
  /** Ticks missed while no node ran: "once" (default) or "skip". */
  readonly missed?: MissedTickPolicy;
  readonly options?: { readonly queue?: string; readonly priority?: number; readonly maxAttempts?: number; readonly timeoutMs?: number };
}

/** A package's schedules are wrong: the message names the package and, when it is one, the schedule. */
export class PackageScheduleError extends Error {
  override readonly name = "PackageScheduleError";
  constructor(
    readonly packageName: string,
    readonly scheduleName: string | null,
    detail: string,
  ) {
    super(`package ${packageName}: ${scheduleName === null ? "" : `schedule ${JSON.stringify(scheduleName)}: `}${detail}`);
  }
}

const SCHEDULE_NAME = /^[\w.:-]{1,99}$/;
const KEYS: readonly string[] = ["name", "cron", "timeZone", "task", "parameters", "missed", "options"];
const OPTION_KEYS: readonly string[] = ["queue", "priority", "maxAttempts", "timeoutMs"];

/** The name a package's schedule has in the store. */
export function storedScheduleName(packageName: string, name: string): string {
  return `${packageName}.${name}`;
}

/** Checks the shape of a package's "schedules" (what does not need the package's code). */
export function parsePackageSchedules(packageName: string, value: unknown): PackageSchedule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new PackageScheduleError(packageName, null, `"schedules" must be an array, got ${JSON.stringify(value)}`);
  const seen = new Set<string>();
  return value.map((entry: unknown, i) => {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new PackageScheduleError(packageName, null, `schedules[${i}] must be an object, got ${JSON.stringify(entry)}`);
    }
    const s = entry as Record<string, unknown>;
    if (typeof s.name !== "string" || !SCHEDULE_NAME.test(s.name)) {
      throw new PackageScheduleError(packageName, null, `schedules[${i}].name must be 1-99 letters, digits or _ . : -, got ${JSON.stringify(s.name)}`);
    }
    const name = s.name;
    const fail = (detail: string): never => {
      throw new PackageScheduleError(packageName, name, detail);
    };
    if (seen.has(name)) fail("the package declares two schedules with this name");
    seen.add(name);
    const unknown = Object.keys(s).filter((k) => !KEYS.includes(k));
    if (unknown.length) fail(`unknown ${unknown.length === 1 ? "property" : "properties"} ${unknown.map((k) => JSON.stringify(k)).join(", ")}; a schedule has ${KEYS.join(", ")}`);
    if (typeof s.cron !== "string" || s.cron.trim() === "") fail(`cron must be a cron expression, got ${JSON.stringify(s.cron)}`);
    if (s.timeZone !== undefined && typeof s.timeZone !== "string") fail(`timeZone must be an IANA time zone name, got ${JSON.stringify(s.timeZone)}`);
    if (typeof s.task !== "string" || s.task === "") fail(`task must name a task class of the package, got ${JSON.stringify(s.task)}`);
    if (s.missed !== undefined && !MISSED_TICK_POLICIES.includes(s.missed as MissedTickPolicy)) {
      fail(`missed must be ${MISSED_TICK_POLICIES.map((p) => JSON.stringify(p)).join(" or ")}, got ${JSON.stringify(s.missed)}`);
    }
    if (s.options !== undefined) {
      if (s.options === null || typeof s.options !== "object" || Array.isArray(s.options)) fail(`options must be an object, got ${JSON.stringify(s.options)}`);
      const extra = Object.keys(s.options as object).filter((k) => !OPTION_KEYS.includes(k));
      if (extra.length) fail(`unknown option ${extra.map((k) => JSON.stringify(k)).join(", ")}; options are ${OPTION_KEYS.join(", ")}`);
    }
    return {
      name,
      cron: s.cron as string,
      task: s.task as string,
      parameters: s.parameters === undefined ? {} : s.parameters,
      ...(s.timeZone !== undefined ? { timeZone: s.timeZone as string } : {}),
      ...(s.missed !== undefined ? { missed: s.missed as MissedTickPolicy } : {}),
      ...(s.options !== undefined ? { options: s.options as NonNullable<PackageSchedule["options"]> } : {}),
    };
  });
}

/** Checks and defines the schedules of package builds, for one platform. */
export class PackageSchedules {
  constructor(
    private readonly runtime: Runtime,
    private readonly loader: PackageLoader,
  ) {}

  /** Before a build is stored: every schedule must fit the build's code (loaded, not kept). Throws PackageScheduleError. */
  async check(packageName: string, loaded: LoadedPackage, schedules: readonly PackageSchedule[]): Promise<void> {
    if (schedules.length === 0) return;
    const now = await this.runtime.driver.clockNow();
    for (const schedule of schedules) {
      await this.named(packageName, schedule, () => {
        scheduleRow(this.definition(packageName, schedule, loaded), this.runtime.registry, this.runtime.maxParameterBytes, now);
        return Promise.resolve();
      });
    }
  }

  /**
   * Defines a stored build's schedules (created, or updated keeping their state) and deletes those
   * named in `earlier` (as the package declared them) that this one does not declare.
   */
  async apply(packageName: string, version: number, schedules: readonly PackageSchedule[], earlier: readonly string[] = []): Promise<void> {
    if (schedules.length > 0) {
      const loaded = (await this.loader.load(packageName, version)).loaded;
      for (const schedule of schedules) {
        await this.named(packageName, schedule, () => this.runtime.defineSchedule(this.definition(packageName, schedule, loaded)));
      }
    }
    const kept = new Set(schedules.map((s) => s.name));
    const gone = new Set(earlier.filter((name) => !kept.has(name)).map((name) => storedScheduleName(packageName, name)));
    if (gone.size === 0) return;
    for (const stored of await this.runtime.listSchedules()) {
      if (gone.has(stored.name)) await this.runtime.deleteSchedule(stored.name);
    }
  }

  private definition(packageName: string, schedule: PackageSchedule, loaded: LoadedPackage): ScheduleDefinition {
    const classes = taskClassesByName(loaded);
    const taskClass = classes.get(schedule.task);
    if (!taskClass) {
      const names = [...classes.keys()].sort();
      throw new Error(`no task class named ${JSON.stringify(schedule.task)} in the package (${names.length ? `its task classes: ${names.join(", ")}` : "it has no task classes"})`);
    }
    return {
      name: storedScheduleName(packageName, schedule.name),
      cron: schedule.cron,
      task: taskClass as StartableTaskClass,
      parameters: schedule.parameters ?? {},
      ...(schedule.timeZone !== undefined ? { timeZone: schedule.timeZone } : {}),
      ...(schedule.missed !== undefined ? { missed: schedule.missed } : {}),
      ...(schedule.options !== undefined ? { options: schedule.options } : {}),
    };
  }

  /** Runs fn; an error becomes a PackageScheduleError naming the package and the schedule as declared. */
  private async named(packageName: string, schedule: PackageSchedule, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      const stored = JSON.stringify(storedScheduleName(packageName, schedule.name));
      let detail = error instanceof Error ? error.message : String(error);
      // The runtime's messages name the stored schedule; say it as the package declares it.
      if (detail.startsWith(`schedule ${stored}: `)) detail = detail.slice(`schedule ${stored}: `.length);
      detail = detail.split(`schedule ${stored}`).join(`schedule ${JSON.stringify(schedule.name)}`);
      throw new PackageScheduleError(packageName, schedule.name, detail);
    }
  }
}
