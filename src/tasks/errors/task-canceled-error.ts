/** The task was canceled while it ran: its signal aborts with this reason and its result is discarded. */
export class TaskCanceledError extends Error {
  override readonly name = "TaskCanceledError";
  constructor(readonly taskId: string) {
    super(`task ${taskId} was canceled`);
  }
}
