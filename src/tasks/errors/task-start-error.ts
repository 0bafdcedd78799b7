/** A task could not be started because of how it was called (wrong class, no user, bad options). */
export class TaskStartError extends Error {
  override readonly name = "TaskStartError";
}
