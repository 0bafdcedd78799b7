/** The worker lost the task's lease (it stopped heartbeating long enough for another to take over). */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(readonly taskId: string) {
    super(`the lease on task ${taskId} was lost; its result is discarded`);
  }
}
