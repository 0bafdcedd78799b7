/** The static Task facade was used where no runtime is running. */
export class NoRuntimeError extends Error {
  override readonly name = "NoRuntimeError";
  constructor() {
    super("no underway runtime is running here: create one with createRuntime({...}) and await runtime.start() first");
  }
}
