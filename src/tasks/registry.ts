import { TaskStartError } from "./errors/task-start-error.ts";
import type { BackoffOptions, IBackgroundTask, TaskClassOptions } from "./types.ts";
import { checkKnownKeys, keysOf } from "./known-keys.ts";

/** Any class that can be started; parameters are checked where the class is used. */
export type AnyTaskClass = (new () => IBackgroundTask<never, unknown>) & {
  readonly taskName?: string;
  readonly taskOptions?: TaskClassOptions;
  readonly taskModule?: string;
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
  /** The class's own choice; null: the runtime's default. */
  readonly isolation: "thread" | "none" | null;
  /** The class's own heap limit; null: the runtime's default. */
  readonly memoryLimitMb: number | null;
  /** Starts per window, across workers; null: no limit. */
  readonly rateLimit: { readonly tasks: number; readonly intervalMs: number } | null;
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

/**
 * The ranges of task options, where the stores and Node's timers end: a timeout is a timer (Node
 * fires one set above 2^31-1 ms at once), attempts and priorities are 32-bit integers in the
 * stores, and a run time or a backoff must land before 9999-12-31 (later means held).
 */
export const TASK_LIMITS = {
  maxTimeoutMs: 2_147_483_647,
  maxAttempts: 1_000_000,
  minPriority: -2_147_483_648,
  maxPriority: 2_147_483_647,
  /** A backoff's base and cap: 100 years. */
  maxBackoffMs: 3_155_760_000_000,
} as const;

/**
 * A period a timer waits, checked: whole milliseconds from `min` up to TASK_LIMITS.maxTimeoutMs
 * (Node fires a longer timer at once, with a warning).
 */
export function checkTimerMs(value: unknown, what: string, min = 1): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${what} must be a whole number of ms >= ${min}, got ${String(value)}`);
  }
  if (value > TASK_LIMITS.maxTimeoutMs) throw new RangeError(`${what} must be at most ${TASK_LIMITS.maxTimeoutMs} ms (about 24.8 days), got ${value}`);
  return value;
}

function positiveInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new TaskStartError(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const TASK_OPTION_KEYS = keysOf<TaskClassOptions>()(["maxAttempts", "timeoutMs", "backoff", "queue", "priority", "isolation", "memoryLimitMb", "rateLimit"]);
const BACKOFF_KEYS = keysOf<BackoffOptions>()(["baseMs", "maxMs", "jitter"]);

export function resolveTaskOptions(taskClass: AnyTaskClass, name: string): ResolvedTaskOptions {
  const o = taskClass.taskOptions ?? {};
  if (typeof o !== "object" || o === null) throw new TaskStartError(`${name}.taskOptions must be an object, got ${JSON.stringify(o)}`);
  checkKnownKeys(o, TASK_OPTION_KEYS, `${name}.taskOptions`, TaskStartError);
  const b = o.backoff ?? {};
  if (typeof b !== "object" || b === null) throw new TaskStartError(`${name}.taskOptions.backoff must be an object, got ${JSON.stringify(b)}`);
  checkKnownKeys(b, BACKOFF_KEYS, `${name}.taskOptions.backoff`, TaskStartError);
  const jitter = b.jitter ?? TASK_DEFAULTS.backoff.jitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new TaskStartError(`${name}.taskOptions.backoff.jitter must be between 0 and 1, got ${JSON.stringify(jitter)}`);
  }
  return {
    maxAttempts: maxAttemptsOf(o.maxAttempts ?? TASK_DEFAULTS.maxAttempts, `${name}.taskOptions.maxAttempts`),
    timeoutMs: timeoutMsOf(o.timeoutMs ?? TASK_DEFAULTS.timeoutMs, `${name}.taskOptions.timeoutMs`),
    queue: queueName(o.queue ?? TASK_DEFAULTS.queue, `${name}.taskOptions.queue`),
    priority: priorityOf(o.priority ?? TASK_DEFAULTS.priority, `${name}.taskOptions.priority`),
    backoff: {
      baseMs: positiveInt(b.baseMs ?? TASK_DEFAULTS.backoff.baseMs, `${name}.taskOptions.backoff.baseMs`, 0, TASK_LIMITS.maxBackoffMs),
      maxMs: positiveInt(b.maxMs ?? TASK_DEFAULTS.backoff.maxMs, `${name}.taskOptions.backoff.maxMs`, 0, TASK_LIMITS.maxBackoffMs),
      jitter,
    },
    isolation: isolationOf(o.isolation, `${name}.taskOptions.isolation`),
    memoryLimitMb:
      o.memoryLimitMb === undefined ? null : positiveInt(o.memoryLimitMb, `${name}.taskOptions.memoryLimitMb`, 16, 1_048_576),
    rateLimit: rateLimitOf(o.rateLimit, `${name}.taskOptions.rateLimit`),
  };
}

function rateLimitOf(value: unknown, what: string): { tasks: number; intervalMs: number } | null {
  if (value === undefined) return null;
  if (!value || typeof value !== "object") throw new TaskStartError(`${what} must be { tasks, intervalMs }, got ${JSON.stringify(value)}`);
  checkKnownKeys(value, ["tasks", "intervalMs"], what, TaskStartError);
  const { tasks, intervalMs } = value as { tasks?: unknown; intervalMs?: unknown };
  return { tasks: positiveInt(tasks, `${what}.tasks`, 1, 1_000_000_000), intervalMs: positiveInt(intervalMs, `${what}.intervalMs`, 1, TASK_LIMITS.maxTimeoutMs) };
}

function isolationOf(value: unknown, what: string): "thread" | "none" | null {
  if (value === undefined) return null;
  if (value === "thread" || value === "none") return value;
  throw new TaskStartError(`${what} must be "thread" or "none", got ${JSON.stringify(value)}`);
}

/** The module a class declares with `static taskModule = import.meta.url`, checked. */
export function declaredModuleOf(taskClass: AnyTaskClass, name: string): string | null {
  if (!Object.prototype.hasOwnProperty.call(taskClass, "taskModule")) return null;
  const value = taskClass.taskModule;
  if (typeof value !== "string" || !/^(file|data):/.test(value)) {
    throw new TaskStartError(`${name}.taskModule must be a file: URL (import.meta.url), got ${JSON.stringify(value)}`);
  }
  return value;
}

export function queueName(value: unknown, what: string): string {
  if (typeof value !== "string" || !/^[\w.:-]{1,100}$/.test(value)) {
    throw new TaskStartError(`${what} must be 1-100 letters, digits or _ . : -, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A task's attempts: an integer from 1 to TASK_LIMITS.maxAttempts. */
export function maxAttemptsOf(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > TASK_LIMITS.maxAttempts) {
    throw new TaskStartError(`${what} must be an integer >= 1 and <= ${TASK_LIMITS.maxAttempts}, got ${String(value)}`);
  }
  return value;
}

/** An attempt's timeout: 0 (none) to TASK_LIMITS.maxTimeoutMs, the longest timer Node.js sets. */
export function timeoutMsOf(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > TASK_LIMITS.maxTimeoutMs) {
    throw new TaskStartError(
      `${what} must be an integer >= 0 (0 = no timeout) and <= ${TASK_LIMITS.maxTimeoutMs} (about 24.8 days, the longest timer Node.js sets), got ${String(value)}`,
    );
  }
  return value;
}

/** A priority: an integer in the stores' 32-bit range. */
export function priorityOf(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < TASK_LIMITS.minPriority || value > TASK_LIMITS.maxPriority) {
    throw new TaskStartError(`${what} must be an integer from ${TASK_LIMITS.minPriority} to ${TASK_LIMITS.maxPriority}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** 2 ** 64 times the smallest base (1 ms) is past the largest cap (TASK_LIMITS.maxBackoffMs). */
const MAX_BACKOFF_DOUBLINGS = 64;

/**
 * Delay before the next attempt: exponential in the attempt number, capped, with jitter.
 * `random` is injectable so tests are deterministic.
 */
export function backoffDelay(attempt: number, backoff: Required<BackoffOptions>, random: () => number = Math.random): number {
  // The doubling stops where it has passed any cap: from attempt 1,025 on, 2 ** (attempt - 1) is
  // Infinity, and a base of 0 times Infinity is NaN, a delay no store can take.
  const exponential = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(Math.max(0, attempt - 1), MAX_BACKOFF_DOUBLINGS));
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
/** A class the registry knows, with where isolated threads load it from (null: nowhere known). */
export interface RegistryEntry {
  readonly taskClass: AnyTaskClass;
  readonly options: ResolvedTaskOptions;
  readonly module: string | null;
  /** A class of a published package: threads load it from the store themselves. */
  readonly dynamic: boolean;
}

export class TaskRegistry {
  private readonly byName = new Map<string, RegistryEntry>();
  private readonly dynamicOptions = new WeakMap<AnyTaskClass, ResolvedTaskOptions>();
  private resolver: TaskClassResolver | null = null;
  private limitedCache: { name: string; limit: number; intervalMs: number }[] | null = null;

  constructor(classes: readonly unknown[] = []) {
    classes.forEach((c, i) => this.register(c, `tasks[${i}]`));
  }

  /**
   * Registers a class (idempotent); a second class under the same name is an error. `module` is
   * the module it was loaded from, when the runtime imported it from a task module.
   */
  register(taskClass: unknown, where = "register", module: string | null = null): { name: string; options: ResolvedTaskOptions } {
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
      if (module && !known.module) this.byName.set(name, { ...known, module });
      return { name, options: known.options };
    }
    const options = resolveTaskOptions(taskClass, name);
    this.byName.set(name, { taskClass, options, module: declaredModuleOf(taskClass, name) ?? module, dynamic: false });
    this.limitedCache = null;
    return { name, options };
  }

  resolve(name: string): RegistryEntry | undefined {
    return this.byName.get(name);
  }

  /** Sets where classes that are not registered are looked for (the platform's packages). */
  setResolver(resolver: TaskClassResolver | null): void {
    this.resolver = resolver;
  }

  /**
   * resolveForRun's answer when it needs no resolver, without a promise: the registered class, or
   * undefined when there is no resolver to ask; null when only resolveForRun can tell.
   */
  resolveRegistered(name: string): RegistryEntry | undefined | null {
    const known = this.byName.get(name);
    return known || !this.resolver ? known : null;
  }

  /** The class to run a task of this name with: a registered one, else the resolver's. */
  async resolveForRun(name: string): Promise<RegistryEntry | undefined> {
    const known = this.byName.get(name);
    if (known || !this.resolver) return known;
    const taskClass = await this.resolver(name);
    if (!taskClass) return undefined;
    return { taskClass, options: this.optionsOfDynamic(taskClass, name), module: null, dynamic: true };
  }

  private optionsOfDynamic(taskClass: AnyTaskClass, name: string): ResolvedTaskOptions {
    let options = this.dynamicOptions.get(taskClass);
    if (!options) {
      options = resolveTaskOptions(taskClass, name);
      this.dynamicOptions.set(taskClass, options);
    }
    return options;
  }

  /** The registered classes with a rate limit, by name (asked on every claim: kept until a class is added). */
  rateLimited(): readonly { name: string; limit: number; intervalMs: number }[] {
    if (!this.limitedCache) {
      const limited: { name: string; limit: number; intervalMs: number }[] = [];
      for (const [name, entry] of this.byName) {
        const rate = entry.options.rateLimit;
        if (rate) limited.push({ name, limit: rate.tasks, intervalMs: rate.intervalMs });
      }
      this.limitedCache = limited;
    }
    return this.limitedCache;
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** The modules registered classes declare or were registered from (file: URLs). */
  modules(): string[] {
    const modules = new Set<string>();
    for (const entry of this.byName.values()) if (entry.module) modules.add(entry.module);
    return [...modules].sort();
  }
}
