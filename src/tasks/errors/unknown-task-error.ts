/** A worker claimed a task whose name no registered class carries. */
export class UnknownTaskError extends Error {
  override readonly name = "UnknownTaskError";
  constructor(readonly taskName: string, known: readonly string[]) {
    super(
      `no task class named "${taskName}" is registered in this worker` +
        (known.length ? ` (registered: ${known.join(", ")})` : " (none is registered)") +
        `; pass the class, or its module, in createRuntime({ tasks: [...] }) (or --tasks): a class a task starts from its thread ` +
        `reaches this worker by name only`,
    );
  }
}
