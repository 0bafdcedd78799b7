/** An attempt's thread outgrew its memory limit and was stopped; the attempt fails and may be retried. */
export class TaskMemoryLimitError extends Error {
  override readonly name = "TaskMemoryLimitError";
  constructor(readonly limitMb: number) {
    super(`the attempt exceeded its memory limit of ${limitMb} MB and its thread was stopped`);
  }
}
