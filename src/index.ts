/** The public API of underway. Everything not exported here is internal. */
export { Task } from "./tasks/task.ts";
export type { ParametersOf, StartableTaskClass, UserConnectionTaskClass } from "./tasks/task.ts";
export type {
  BackoffOptions,
  IBackgroundTask,
  IUserConnectionRequired,
  Initiator,
  StartOptions,
  TaskClass,
  TaskClassOptions,
  TaskContext,
  TaskErrorInfo,
  TaskFilter,
  TaskInfo,
  TaskPage,
  TaskState,
  UserConnectionLike,
} from "./tasks/types.ts";
export { TASK_STATES, TERMINAL_STATES } from "./tasks/types.ts";
export type { Logger } from "./tasks/logger.ts";
export { currentUser, runAsUser, type ContinuationCondition, type TaskHandle } from "./tasks/ambient.ts";
export type { MissedTickPolicy, ScheduleInfo } from "./tasks/schedules.ts";
export type { ScheduleDefinition } from "./runtime/schedules.ts";
export type { QueueDepth, TaskStats } from "./store/driver.ts";
export { TASK_DEFAULTS } from "./tasks/registry.ts";
export { UnrecoverableTaskError } from "./tasks/errors/unrecoverable-task-error.ts";
export { TaskTimeoutError } from "./tasks/errors/task-timeout-error.ts";
export { UnknownTaskError } from "./tasks/errors/unknown-task-error.ts";
export { TaskStartError } from "./tasks/errors/task-start-error.ts";
export { NoRuntimeError } from "./tasks/errors/no-runtime-error.ts";
export { TaskNotFoundError } from "./tasks/errors/task-not-found-error.ts";
export { TaskInterruptedError } from "./tasks/errors/task-interrupted-error.ts";
export { TaskFailedError } from "./tasks/errors/task-failed-error.ts";
export { LeaseLostError } from "./tasks/errors/lease-lost-error.ts";
export { TaskSecurityError } from "./tasks/errors/task-security-error.ts";
export { TaskCanceledError } from "./tasks/errors/task-canceled-error.ts";
export { TaskMemoryLimitError } from "./tasks/errors/task-memory-limit-error.ts";
export { TaskExitedError } from "./tasks/errors/task-exited-error.ts";
export {
  DEFAULT_MAX_PARAMETER_BYTES,
  TaskDeserializationError,
  TaskSerializationError,
} from "./codec/index.ts";
export { createRuntime, Runtime, type RuntimeConfig, type RuntimeEvents, type WorkerConfig } from "./runtime/runtime.ts";
export type { UserConnectionFactory, WorkerEvent } from "./worker/worker.ts";
export type { DriverTransaction } from "./store/driver.ts";

// The platform slice.
export { Platform, type PlatformConfig } from "./platform/platform.ts";
export { UserConnection, type AppConnection, type CurrentUser } from "./platform/user-connection.ts";
export { Entity } from "./platform/entities/entity.ts";
export { Activity } from "./platform/entities/activity.ts";
export { EntitySchemaQuery, type FilterComparison } from "./platform/entities/query.ts";
export {
  EntitySchema,
  EntitySchemaManager,
  type ColumnDefinition,
  type ColumnType,
  type EntitySchemaDefinition,
} from "./platform/entities/schema.ts";
export { EntitySecurityError, EntityValidationError } from "./platform/entities/errors.ts";
export { ActivityConsts, ActivityPriorityIds, ActivityStatusIds, SystemIds } from "./platform/constants.ts";
export type { PlatformUser, NewUser } from "./platform/users/users.ts";
export { SignInThrottledError, type SignInLimits } from "./platform/users/sign-in-limits.ts";
