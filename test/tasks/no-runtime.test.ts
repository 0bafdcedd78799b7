import assert from "node:assert/strict";
import { it } from "node:test";
import { createRuntime, NoRuntimeError, Task, type IBackgroundTask } from "../../src/index.ts";
import { tempDb, tempDir } from "../helpers.ts";

class Noop implements IBackgroundTask<null> {
  run(): void {}
}

it("Task.startNew without a running runtime says how to start one", async () => {
  assert.throws(() => Task.startNew(Noop, null), (e: unknown) => e instanceof NoRuntimeError && /createRuntime/.test(e.message));
  // A stopped runtime is no longer the process default.
  const runtime = createRuntime({ db: tempDb(tempDir()), logger: false });
  await runtime.start();
  await Task.startNew(Noop, null);
  await runtime.stop();
  assert.throws(() => Task.startNew(Noop, null), NoRuntimeError);
});
