/**
 * The ambient context: which runtime the static Task facade uses, the caller's open transaction,
 * and the current user. The runtime and the platform fill it; tasks/ only defines it, so nothing
 * imports upwards.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { NoRuntimeError } from "./errors/no-runtime-error.ts";
import { checkedInitiator } from "./initiator.ts";
import type { AnyTaskClass } from "./registry.ts";
import type { Initiator, StartOptions, TaskInfo } from "./types.ts";

/** A started task. */
export interface TaskHandle {
  readonly id: string;
  /** The task as stored now. */
  get(): Promise<TaskInfo>;
  /**
   * Resolves when the task has succeeded; rejects with TaskFailedError when it ends dead or
   * canceled, and with a timeout error after `timeoutMs` (default: wait forever).
   */
  wait(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<TaskInfo>;
  /**
   * Waits as wait() does, then resolves with what run returned (decoded; undefined when it
   * returned nothing). Name the type you expect: `await handle.result<number>()`.
   */
  result<T = unknown>(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<T>;
}

/** When a continuation runs. */
export type ContinuationCondition = "succeeded" | "ended";

/** A start, checked and encoded by the facade, for the runtime to store. */
export interface StartRequest {
  readonly taskClass: AnyTaskClass;
  readonly name: string;
  readonly parameters: Uint8Array;
  readonly withUserConnection: boolean;
  readonly initiator: Initiator | null;
  readonly options: StartOptions;
}

/** What the facade needs of a runtime. */
export interface TaskStarter {
  /** The largest encoded parameters accepted, in bytes. */
  readonly maxParameterBytes: number;
  startTask(request: StartRequest, transaction: unknown): Promise<TaskHandle>;
  startTasks(requests: readonly StartRequest[], transaction: unknown): Promise<TaskHandle[]>;
  /** Stores a task that starts once the tasks `after` have ended (all succeeded, for "succeeded"). */
  startContinuation(request: StartRequest, after: readonly string[], when: ContinuationCondition, transaction: unknown): Promise<TaskHandle>;
}

export interface AmbientScope {
  readonly runtime?: TaskStarter;
  /** A transaction of the runtime's store that starts join. */
  readonly transaction?: unknown;
  /** The user the code runs as. */
  readonly user?: Initiator;
}

const storage = new AsyncLocalStorage<AmbientScope>();
let processDefault: TaskStarter | null = null;

/** Runs fn with the given additions to the current scope. */
export function runInScope<T>(additions: AmbientScope, fn: () => T): T {
  const current = storage.getStore();
  return storage.run(current ? { ...current, ...additions } : additions, fn);
}

export function currentScope(): AmbientScope {
  return storage.getStore() ?? {};
}

/** The runtime of the current scope, else the process's default runtime. */
export function currentRuntime(): TaskStarter {
  const runtime = storage.getStore()?.runtime ?? processDefault;
  if (!runtime) throw new NoRuntimeError();
  return runtime;
}

/** The first runtime started in a process becomes its default until it stops. */
export function setDefaultRuntime(runtime: TaskStarter): void {
  if (!processDefault) processDefault = runtime;
}

export function clearDefaultRuntime(runtime: TaskStarter): void {
  if (processDefault === runtime) processDefault = null;
}

/** The user the current code runs as, if any. */
export function currentUser(): Initiator | undefined {
  return storage.getStore()?.user;
}

/** Runs fn as the given user: tasks started with a user connection inside run as that user. */
export function runAsUser<T>(user: Initiator, fn: () => T): T {
  return runInScope({ user: checkedInitiator(user) }, fn);
}
