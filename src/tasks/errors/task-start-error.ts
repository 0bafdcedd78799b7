/** A task could not be started because of how it was called (wrong class, no user, bad options). */
export class TaskStartError extends Error {
  override readonly name = "TaskStartError";
}

/**
 * A task could not be started because the server lacks a setting it needs (its secret): not the
 * caller's mistake, and not theirs to mend. The HTTP API answers 503 with its message.
 */
export class TaskStartSettingError extends TaskStartError {
  readonly serverSetting = true;
}
