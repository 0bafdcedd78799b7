import { encodeParameters } from "../codec/index.ts";
import { currentRuntime, currentScope, type ContinuationCondition, type StartRequest, type TaskHandle } from "./ambient.ts";
import { TaskStartError } from "./errors/task-start-error.ts";
import { assertTaskClass, requiresUserConnection, taskNameOf, type AnyTaskClass } from "./registry.ts";
import type { IBackgroundTask, IUserConnectionRequired, StartOptions, TaskClassOptions } from "./types.ts";

/** A class that can be started: a parameterless constructor and a run method. */
export type StartableTaskClass = (new () => IBackgroundTask<never, unknown>) & {
  readonly taskName?: string;
  readonly taskOptions?: TaskClassOptions;
};

/** The TParameters of a task class. */
export type ParametersOf<C extends StartableTaskClass> = InstanceType<C> extends IBackgroundTask<infer P, unknown> ? P : never;

/** A task class whose instances need a user connection. */
export type UserConnectionTaskClass = StartableTaskClass & (new () => IUserConnectionRequired<never>);

/** Makes startNew on a class that needs a user connection a compile-time error. */
export type NoUserConnection<C extends StartableTaskClass> =
  InstanceType<C> extends IUserConnectionRequired<never>
    ? { readonly "this class implements IUserConnectionRequired: start it with Task.startNewWithUserConnection": never }
    : unknown;

function prepare(
  method: string,
  taskClass: unknown,
  parameters: unknown,
  options: StartOptions | undefined,
  withUserConnection: boolean,
  maxBytes: number,
  rootName = "parameters",
): StartRequest {
  assertTaskClass(taskClass, `Task.${method}`);
  const name = taskNameOf(taskClass);
  const needsConnection = requiresUserConnection(taskClass);
  if (needsConnection && !withUserConnection) {
    throw new TaskStartError(
      `Task.startNew: ${name} implements IUserConnectionRequired (it has setUserConnection); start it with Task.startNewWithUserConnection`,
    );
  }
  if (!needsConnection && withUserConnection) {
    throw new TaskStartError(
      `Task.startNewWithUserConnection: ${name} does not implement IUserConnectionRequired (no setUserConnection method); start it with Task.startNew`,
    );
  }
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TaskStartError(`Task.${method}: options must be an object, got ${JSON.stringify(options)}`);
  }
  // Who starts the task is recorded for every start in a user's scope: the task centre shows it,
  // and the fair share is per user. Only a start with a user connection runs as that user.
  const initiator = currentScope().user ?? null;
  if (withUserConnection) {
    if (!initiator) {
      throw new TaskStartError(
        `Task.startNewWithUserConnection: there is no current user to run ${name} as; start it from a signed-in request, a process, a task with a user connection, or inside runAsUser(user, ...)`,
      );
    }
  }
  const bytes = encodeParameters(parameters, { maxBytes, rootName });
  return { taskClass: taskClass as AnyTaskClass, name, parameters: bytes, withUserConnection, initiator, options: options ?? {} };
}

/**
 * The platform's static Task class. Starts background operations without holding up the caller:
 * the returned promise resolves as soon as the task is durably stored.
 *
 * Parameters are checked and encoded synchronously: a value that cannot be serialized throws
 * TaskSerializationError from the call itself, before anything is stored.
 */
export class Task {
  private constructor() {}

  /** Starts a task that needs no user connection. */
  static startNew<C extends StartableTaskClass>(
    taskClass: C & NoUserConnection<C>,
    parameters: ParametersOf<C>,
    options?: StartOptions,
  ): Promise<TaskHandle> {
    const runtime = currentRuntime();
    const request = prepare("startNew", taskClass, parameters, options, false, runtime.maxParameterBytes);
    return runtime.startTask(request, currentScope().transaction);
  }

  /**
   * Starts a task that runs as the current user: the runtime rebuilds a UserConnection for that
   * user when the task starts and passes it to setUserConnection before run.
   */
  static startNewWithUserConnection<C extends UserConnectionTaskClass>(
    taskClass: C,
    parameters: ParametersOf<C>,
    options?: StartOptions,
  ): Promise<TaskHandle> {
    const runtime = currentRuntime();
    const request = prepare("startNewWithUserConnection", taskClass, parameters, options, true, runtime.maxParameterBytes);
    return runtime.startTask(request, currentScope().transaction);
  }

  /** Starts many tasks of one class in one round trip (all stored, or none). */
  static startNewMany<C extends StartableTaskClass>(
    taskClass: C,
    parameters: readonly ParametersOf<C>[],
    options?: StartOptions,
  ): Promise<TaskHandle[]> {
    const runtime = currentRuntime();
    if (!Array.isArray(parameters)) {
      throw new TaskStartError(`Task.startNewMany: parameters must be an array, got ${typeof parameters}`);
    }
    assertTaskClass(taskClass, "Task.startNewMany");
    const withUser = requiresUserConnection(taskClass);
    // By index: `map` skips the holes of a sparse array, which would leave holes among the requests.
    const requests: ReturnType<typeof prepare>[] = [];
    for (let i = 0; i < parameters.length; i++) {
      if (!(i in parameters)) throw new TaskStartError(`Task.startNewMany: parameters[${i}] is a hole in a sparse array; give every element a value`);
      requests.push(prepare("startNewMany", taskClass, parameters[i], options, withUser, runtime.maxParameterBytes, `parameters[${i}]`));
    }
    return runtime.startTasks(requests, currentScope().transaction);
  }

  /**
   * Starts a task once others have ended: `when: "succeeded"` (default) runs it only if every one
   * of them succeeded, else it is canceled; `"ended"` runs it once all have ended, whatever the
   * outcome (a batch's continuation). Like startNew, it resolves once the task is stored; a class
   * that needs a user connection runs as the current user.
   */
  static continueWith<C extends StartableTaskClass>(
    after: TaskHandle | string | readonly (TaskHandle | string)[],
    taskClass: C,
    parameters: ParametersOf<C>,
    options?: StartOptions & { readonly when?: ContinuationCondition },
  ): Promise<TaskHandle> {
    const runtime = currentRuntime();
    const list = (Array.isArray(after) ? after : [after]) as readonly (TaskHandle | string)[];
    const ids = list.map((a, i) => {
      const id = typeof a === "string" ? a : a && typeof a === "object" ? a.id : undefined;
      if (typeof id !== "string") throw new TaskStartError(`Task.continueWith: after[${i}] must be a task handle or id, got ${JSON.stringify(a)}`);
      return id;
    });
    if (ids.length === 0) throw new TaskStartError("Task.continueWith: after must name at least one task");
    const { when = "succeeded", ...startOptions } = options ?? {};
    if (when !== "succeeded" && when !== "ended") {
      throw new TaskStartError(`Task.continueWith: options.when must be "succeeded" or "ended", got ${JSON.stringify(when)}`);
    }
    if (startOptions.runAt !== undefined || startOptions.delayMs !== undefined) {
      throw new TaskStartError("Task.continueWith: a continuation starts when its predecessors end; runAt and delayMs do not apply");
    }
    assertTaskClass(taskClass, "Task.continueWith");
    const request = prepare("continueWith", taskClass, parameters, startOptions, requiresUserConnection(taskClass), runtime.maxParameterBytes);
    return runtime.startContinuation(request, ids, when, currentScope().transaction);
  }
}
