/**
 * The task's code ended the thread it ran in (process.exit, or an error thrown outside run, such
 * as in a timer callback); the attempt fails and may be retried. The worker lives on.
 */
export class TaskExitedError extends Error {
  override readonly name = "TaskExitedError";
  constructor(readonly detail: string) {
    super(`the task ended its thread: ${detail}`);
  }
}
