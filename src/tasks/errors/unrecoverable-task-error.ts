/**
 * Thrown by a task's run to say "do not retry": the task goes straight to dead, whatever
 * attempts it has left.
 */
export class UnrecoverableTaskError extends Error {
  override readonly name = "UnrecoverableTaskError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
