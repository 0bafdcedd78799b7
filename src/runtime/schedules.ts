/** Schedule definitions given to the runtime: checked, encoded, and turned into store rows. */
import { encodeParameters } from "../codec/index.ts";
import { cronTicks, type CronTicks } from "../maintenance/cron.ts";
import type { ScheduleUpsertParams } from "../store/driver.ts";
import { requiresUserConnection, type TaskRegistry } from "../tasks/registry.ts";
import { MISSED_TICK_POLICIES, type MissedTickPolicy } from "../tasks/schedules.ts";
import type { ParametersOf, StartableTaskClass } from "../tasks/task.ts";
import { maxAttemptsOf, priorityOf, queueName, timeoutMsOf } from "../tasks/registry.ts";

/** A recurring task, defined in code (createRuntime({ schedules }) or runtime.defineSchedule). */
export interface ScheduleDefinition<C extends StartableTaskClass = StartableTaskClass> {
  /** Unique, stable name: it keys the schedule in the store across deploys. */
  readonly name: string;
  /** A cron expression: five fields (minute first), or six with seconds first. */
  readonly cron: string;
  /** The IANA time zone the expression is read in. Default "UTC". */
  readonly timeZone?: string;
  /** The task class each tick starts. It cannot need a user connection: no one starts a tick. */
  readonly task: C;
  /** Checked against the class when the definition names it (defineSchedule); encoded at definition either way. */
  readonly parameters: StartableTaskClass extends C ? unknown : ParametersOf<C>;
  /** Ticks missed while no node ran (see docs/scheduling.md): "once" (default) runs one task for them, "skip" none. */
  readonly missed?: MissedTickPolicy;
  readonly options?: { readonly queue?: string; readonly priority?: number; readonly maxAttempts?: number; readonly timeoutMs?: number };
}

const NAME = /^[\w.:-]{1,200}$/;

/** A schedule's name, as every method that takes one checks it. */
export function checkScheduleName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`a schedule's name must be 1-200 letters, digits or _ . : -, got ${typeof name === "string" ? JSON.stringify(name.slice(0, 200)) : typeof name}`);
  }
}

/** Checks a definition and encodes it; `nowMs` is the database clock, for the first tick. */
export function scheduleRow(def: ScheduleDefinition, registry: TaskRegistry, maxParameterBytes: number, nowMs: number): ScheduleUpsertParams {
  if (!def || typeof def !== "object") throw new TypeError(`a schedule must be an object, got ${JSON.stringify(def)}`);
  checkScheduleName(def.name);
  const what = `schedule ${JSON.stringify(def.name)}`;
  const timeZone = def.timeZone ?? "UTC";
  const ticks = cronTicks(def.cron, timeZone, what);
  const missed = def.missed ?? "once";
  if (!MISSED_TICK_POLICIES.includes(missed)) {
    throw new TypeError(`${what}: missed must be ${MISSED_TICK_POLICIES.map((p) => JSON.stringify(p)).join(" or ")}, got ${JSON.stringify(missed)}`);
  }
  const { name: taskName, options: classOptions } = registry.register(def.task, `${what}: task`);
  if (requiresUserConnection(def.task)) {
    throw new TypeError(`${what}: ${taskName} needs a user connection, but a schedule has no user to run it as`);
  }
  const o = def.options ?? {};
  const maxAttempts = maxAttemptsOf(o.maxAttempts ?? classOptions.maxAttempts, `${what}: options.maxAttempts`);
  const timeoutMs = timeoutMsOf(o.timeoutMs ?? classOptions.timeoutMs, `${what}: options.timeoutMs`);
  return {
    name: def.name,
    cron: def.cron,
    timeZone,
    taskName,
    parameters: encodeParameters(def.parameters, { maxBytes: maxParameterBytes, rootName: `${what}.parameters` }),
    queue: o.queue === undefined ? classOptions.queue : queueName(o.queue, `${what}: options.queue`),
    priority: o.priority === undefined ? classOptions.priority : priorityOf(o.priority, `${what}: options.priority`),
    maxAttempts,
    timeoutMs,
    missed,
    nextRunAtMs: nextTickOf(ticks, def.cron as string, nowMs, what),
  };
}

/** The first tick after now; an expression that never fires (the 31st of February) is refused. */
function nextTickOf(ticks: CronTicks, cron: string, nowMs: number, what: string): number {
  const next = ticks.next(nowMs);
  if (next === null) throw new RangeError(`${what}: the cron expression ${JSON.stringify(cron)} never fires`);
  return next;
}
