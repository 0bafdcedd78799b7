/** The attempt was stopped because its worker shut down; the task is queued again. */
export class TaskInterruptedError extends Error {
  override readonly name = "TaskInterruptedError";
  constructor(reason: string) {
    super(reason);
  }
}
