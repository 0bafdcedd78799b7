/**
 * The worker lost the task's lease (it stopped heartbeating long enough for another to take over),
 * or could not renew it with the store before it ran out (`unconfirmed`): the run is stopped so
 * that it does not go on beside the run that takes the task over.
 */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(
    readonly taskId: string,
    unconfirmed = false,
  ) {
    super(
      unconfirmed
        ? `the lease on task ${taskId} could not be renewed before it ran out (the store did not answer); the run is stopped and the task will run again`
        : `the lease on task ${taskId} was lost; its result is discarded`,
    );
  }
}
