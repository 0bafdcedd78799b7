/** An attempt ran longer than its task's timeout; the attempt fails and may be retried. */
export class TaskTimeoutError extends Error {
  override readonly name = "TaskTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`the attempt exceeded its timeout of ${timeoutMs} ms`);
  }
}
