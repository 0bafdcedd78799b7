/**
 * Thrown by encodeParameters, synchronously and before anything is stored, when a parameter value
 * cannot be serialized. `path` names the offending value (`parameters.owner.save`), `reason` says
 * why; the message is `${path}: ${reason}`.
 */
export class TaskSerializationError extends Error {
  override readonly name = "TaskSerializationError";
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}
