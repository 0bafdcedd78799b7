import type { TaskInfo } from "../types.ts";

/** Raised by TaskHandle.wait when the task ended dead or canceled. */
export class TaskFailedError extends Error {
  override readonly name = "TaskFailedError";
  constructor(readonly task: TaskInfo) {
    super(
      `task ${task.id} (${task.name}) ended ${task.state}` +
        (task.lastError ? `: ${task.lastError.name}: ${task.lastError.message}` : ""),
    );
  }
}
