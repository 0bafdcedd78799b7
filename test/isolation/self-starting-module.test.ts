/**
 * A module that defines a task class and starts a runtime at its top level: a task thread that
 * imports it to find the class must not start a worker there, whose threads would import it
 * again, without end. The start is refused in the thread, saying why and where.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { SelfStarting, StartsElsewhere } from "../fixtures/self-starting-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { ended } from "./helpers.ts";

it("refuses a runtime with a worker started by a task module's top level in a task thread, naming the module", async () => {
  const dir = tempDir();
  // Seen by the threads booted from now on (a thread copies the environment as it starts).
  process.env.UNDERWAY_TEST_SELF_START_DB = tempDb(dir);
  after(() => {
    delete process.env.UNDERWAY_TEST_SELF_START_DB;
  });
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [SelfStarting], worker: { concurrency: 1 }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));

  const handle = await runtime.run(() => Task.startNew(SelfStarting, null));
  const task = await ended(runtime, handle.id);
  assert.equal(task.state, "dead");
  const message = task.errors.at(-1)?.message ?? "";
  assert.match(message, /createRuntime with a worker was called in an isolated task's thread while the thread imported \S*self-starting-tasks\.ts/);
  assert.match(message, /Start the runtime in your application's entry module/);
});

it("allows a task in a thread to create a runtime without a worker, to start tasks in another store", async () => {
  const dir = tempDir();
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [StartsElsewhere], worker: { concurrency: 1 }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const handle = await runtime.run(() => Task.startNew(StartsElsewhere, { db: tempDb(dir) }));
  const task = await ended(runtime, handle.id);
  assert.equal(task.state, "succeeded", task.errors.at(-1)?.message);
  assert.equal(await handle.result(), 1);
});
