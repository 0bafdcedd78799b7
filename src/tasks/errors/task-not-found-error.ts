/** No task has the given id. */
export class TaskNotFoundError extends Error {
  override readonly name = "TaskNotFoundError";
  constructor(readonly taskId: string) {
    super(`no task with id ${JSON.stringify(taskId)}`);
  }
}
