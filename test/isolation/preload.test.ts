/**
 * Task threads import the modules of the task classes registered in the worker's process as they
 * boot, so the first run of a class on a new thread does not wait for its module; a module that
 * cannot load in a thread fails only its own tasks.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { MainOnlyTask } from "../fixtures/main-only-tasks.ts";
import { ModuleLoadedAtTask } from "../fixtures/preload-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

it("imports the registered classes' modules as a thread boots, and a module that cannot load there fails only its tasks", async () => {
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [ModuleLoadedAtTask, MainOnlyTask],
    isolation: { mode: "thread" },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  // The warm threads booted with start(): a start after it finds the module loaded.
  const startedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const loaded = await runtime.run(() => Task.startNew(ModuleLoadedAtTask, null));
  const loadedAt = (await loaded.result({ timeoutMs: 10_000 })) as number;
  assert.ok(loadedAt <= startedAt, `the module was imported in the thread ${loadedAt - startedAt} ms after start() resolved`);

  const refused = await runtime.run(() => Task.startNew(MainOnlyTask, null, { maxAttempts: 1 }));
  await assert.rejects(refused.result({ timeoutMs: 10_000 }), /refuses to load in a worker thread/);
  // The threads still run the other class.
  const again = await runtime.run(() => Task.startNew(ModuleLoadedAtTask, null));
  assert.equal(typeof (await again.result({ timeoutMs: 10_000 })), "number");
});
