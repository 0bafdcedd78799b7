import { TaskStartError } from "./errors/task-start-error.ts";
import type { BackoffOptions, IBackgroundTask, TaskClassOptions } from "./types.ts";

/** Any class that can be started; parameters are checked where the class is used. */
export type AnyTaskClass = (new () => IBackgroundTask<never>) & {
  readonly taskName?: string;
  readonly taskOptions?: TaskClassOptions;
};

/** Defaults of every task class option. */
export const TASK_DEFAULTS = {
  maxAttempts: 5,
  timeoutMs: 300_000,
  queue: "default",
  priority: 0,
  backoff: { baseMs: 1_000, maxMs: 3_600_000, jitter: 0.5 },
} as const;

export interface ResolvedTaskOptions {
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly queue: string;
  readonly priority: number;
  readonly backoff: Required<BackoffOptions>;
}

const NAME_PATTERN = /^[A-Za-z_$][\w$.:-]{0,199}$/;

/** Checks that a value is a task class, at run time, for callers without types. */
export function assertTaskClass(value: unknown, where: string): asserts value is AnyTaskClass {
  if (typeof value !== "function" || typeof (value as { prototype?: { run?: unknown } }).prototype?.run !== "function") {
    throw new TaskStartError(
      `${where}: expected a task class (a class with a run(parameters) method), got ${describe(value)}`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "function") return `the function ${value.name || "(anonymous)"} without a run method on its prototype`;
  if (typeof value === "object") return `an object (${Object.prototype.toString.call(value)}); pass the class itself, not an instance`;
  return `a ${typeof value}`;
}

/** The stable name workers resolve a class by: `static taskName`, else the class name. */
export function taskNameOf(taskClass: AnyTaskClass): string {
  const name = Object.prototype.hasOwnProperty.call(taskClass, "taskName") ? taskClass.taskName : taskClass.name;
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new TaskStartError(
      name
        ? `the task name ${JSON.stringify(name)} is not valid: use letters, digits, _ $ . : - (at most 200), starting with a letter, _ or $`
        : "an anonymous class cannot be a task: give the class a name or a static taskName",
    );
  }
  return name;
}

/** True when instances of the class implement IUserConnectionRequired. */
export function requiresUserConnection(taskClass: AnyTaskClass): boolean {
  return typeof (taskClass.prototype as { setUserConnection?: unknown }).setUserConnection === "function";
}

function positiveInt(value: unknown, what: string, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new TaskStartError(`${what} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function resolveTaskOptions(taskClass: AnyTaskClass, name: string): ResolvedTaskOptions {
  const o = taskClass.taskOptions ?? {};
  const b = o.backoff ?? {};
  const jitter = b.jitter ?? TASK_DEFAULTS.backoff.jitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new TaskStartError(`${name}.taskOptions.backoff.jitter must be between 0 and 1, got ${JSON.stringify(jitter)}`);
  }
  return {
    maxAttempts: positiveInt(o.maxAttempts ?? TASK_DEFAULTS.maxAttempts, `${name}.taskOptions.maxAttempts`, 1),
    timeoutMs: positiveInt(o.timeoutMs ?? TASK_DEFAULTS.timeoutMs, `${name}.taskOptions.timeoutMs`, 0),
    queue: queueName(o.queue ?? TASK_DEFAULTS.queue, `${name}.taskOptions.queue`),
    priority: integer(o.priority ?? TASK_DEFAULTS.priority, `${name}.taskOptions.priority`),
    backoff: {
      baseMs: positiveInt(b.baseMs ?? TASK_DEFAULTS.backoff.baseMs, `${name}.taskOptions.backoff.baseMs`, 0),
      maxMs: positiveInt(b.maxMs ?? TASK_DEFAULTS.backoff.maxMs, `${name}.taskOptions.backoff.maxMs`, 0),
      jitter,
    },
  };
}

export function queueName(value: unknown, what: string): string {
  if (typeof value !== "string" || !/^[\w.:-]{1,100}$/.test(value)) {
    throw new TaskStartError(`${what} must be 1-100 letters, digits or _ . : -, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function integer(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new TaskStartError(`${what} must be an integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Delay before the next attempt: exponential in the attempt number, capped, with jitter.
 * `random` is injectable so tests are deterministic.
 */
export function backoffDelay(attempt: number, backoff: Required<BackoffOptions>, random: () => number = Math.random): number {
  const exponential = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (1 - backoff.jitter * random()));
}

/**
 * Marks a class that comes from a published package build: such classes are not kept by name
 * (a newer build replaces them); workers find the current one through the registry's resolver.
 */
export const DYNAMIC_TASK_CLASS: unique symbol = Symbol.for("underway.dynamicTaskClass");

function isDynamic(taskClass: AnyTaskClass): boolean {
  return Object.prototype.hasOwnProperty.call(taskClass, DYNAMIC_TASK_CLASS);
}

/** Finds a class no registration names, such as one of a published package. */
export type TaskClassResolver = (name: string) => Promise<AnyTaskClass | undefined>;

/** The classes one runtime knows, by name. */
export class TaskRegistry {
  private readonly byName = new Map<string, { taskClass: AnyTaskClass; options: ResolvedTaskOptions }>();
  private readonly dynamicOptions = new WeakMap<AnyTaskClass, ResolvedTaskOptions>();
  private resolver: TaskClassResolver | null = null;

  constructor(classes: readonly unknown[] = []) {
    classes.forEach((c, i) => this.register(c, `tasks[${i}]`));
  }

  /** Registers a class (idempotent); a second class under the same name is an error. */
  register(taskClass: unknown, where = "register"): { name: string; options: ResolvedTaskOptions } {
    assertTaskClass(taskClass, where);
    const name = taskNameOf(taskClass);
    if (isDynamic(taskClass)) return { name, options: this.optionsOfDynamic(taskClass, name) };
    const known = this.byName.get(name);
    if (known) {
      if (known.taskClass !== taskClass) {
        throw new TaskStartError(
          `two different classes use the task name "${name}": give one of them a distinct static taskName`,
        );
      }
      return { name, options: known.options };
    }
    const options = resolveTaskOptions(taskClass, name);
    this.byName.set(name, { taskClass, options });
    return { name, options };
  }

  resolve(name: string): { taskClass: AnyTaskClass; options: ResolvedTaskOptions } | undefined {
    return this.byName.get(name);
  }

  /** Sets where classes that are not registered are looked for (the platform's packages). */
  setResolver(resolver: TaskClassResolver | null): void {
    this.resolver = resolver;
  }

  /** The class to run a task of this name with: a registered one, else the resolver's. */
  async resolveForRun(name: string): Promise<{ taskClass: AnyTaskClass; options: ResolvedTaskOptions } | undefined> {
    const known = this.byName.get(name);
    if (known || !this.resolver) return known;
    const taskClass = await this.resolver(name);
    if (!taskClass) return undefined;
    return { taskClass, options: this.optionsOfDynamic(taskClass, name) };
  }

  private optionsOfDynamic(taskClass: AnyTaskClass, name: string): ResolvedTaskOptions {
    let options = this.dynamicOptions.get(taskClass);
    if (!options) {
      options = resolveTaskOptions(taskClass, name);
      this.dynamicOptions.set(taskClass, options);
    }
    return options;
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}
