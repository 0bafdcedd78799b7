/** A task module that a thread failed to load is loaded again by the next attempt on that thread. */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

it("loads a task's module again on the next attempt after a failed load, on the same thread", async () => {
  const dir = tempDir();
  const file = join(dir, "late-module.mjs");
  rmSync(file, { force: true });
  class LateTask {
    static readonly taskModule = pathToFileURL(file).href;
    static readonly taskOptions = { maxAttempts: 50, backoff: { baseMs: 20, maxMs: 20, jitter: 0 } };
    run(): string {
      return "ran here";
    }
  }
  // One slot, so one thread: the second attempt runs where the first failed to load the module.
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [LateTask], worker: { concurrency: 1 }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const handle = await runtime.run(() => Task.startNew(LateTask, null));
  const failed = await until(async () => {
    const task = await handle.get();
    return task.attempt >= 1 && task.errors.length >= 1 ? task : null;
  }, "the first attempt to fail");
  assert.match(failed.errors[0]?.message ?? "", /late-module\.mjs|Cannot find module/);
  // The module is deployed now.
  writeFileSync(file, 'export class LateTask { run() { return "ran in the thread"; } }\n');
  const done = await handle.wait({ timeoutMs: 10_000 }).catch(async () => handle.get());
  assert.equal(done.state, "succeeded", `ended ${done.state} after ${done.errors.length} failed attempts: ${done.errors.at(-1)?.message ?? ""}`);
  assert.equal(await handle.result(), "ran in the thread");
});
