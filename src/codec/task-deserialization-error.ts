/**
 * Thrown by decodeParameters when stored bytes are not a valid parameter value: corrupt or
 * truncated data, trailing bytes, unsupported extension types or map keys, or nesting beyond
 * MAX_NESTING_DEPTH. `path` names where in the value decoding stopped, `reason` says why; the
 * message is `${path}: ${reason}`.
 */
export class TaskDeserializationError extends Error {
  override readonly name = "TaskDeserializationError";
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}
