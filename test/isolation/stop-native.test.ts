/**
 * Stopping a worker whose task thread is held in a native call (a synchronous child process): the
 * thread ends only when the call returns, and the stop must not wait for it.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { Runtime } from "../../src/runtime/runtime.ts";
import { NativeBlockTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

it("stops, its store closed, while a task's thread is held in a native call", async () => {
  const runtime = new Runtime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], isolation: { mode: "thread", minThreads: 1 } }, { stopWaitMs: 500 });
  await runtime.start();
  const file = join(dir, "native.txt");
  const handle = await runtime.run(() => Task.startNew(NativeBlockTask, { file, seconds: 20 }, { timeoutMs: 200 }));
  await until(() => existsSync(file) && readFileSync(file, "utf8") === "started\n", "the task to be in its native call", 20_000);
  const begun = Date.now();
  await runtime.stop({ graceMs: 0 });
  assert.ok(Date.now() - begun < 10_000, `stop() took ${Date.now() - begun} ms, as long as the native call`);
  await assert.rejects(handle.get(), /closed|stopped/);
});

it("refuses isolation times a timer cannot wait", () => {
  assert.throws(
    () => createRuntime({ db: tempDb(dir), logger: false, isolation: { mode: "thread", abortGraceMs: 3_000_000_000 } }),
    /isolation\.abortGraceMs must be an integer from 0 to 2147483647, got 3000000000/,
  );
  assert.throws(() => createRuntime({ db: tempDb(dir), logger: false, isolation: { mode: "thread", idleThreadMs: 2 ** 31 } }), /isolation\.idleThreadMs must be an integer from 1/);
});
