/**
 * A task in a thread that waits for another task: the worker's process, whose worker runs that
 * task, tells the thread when it ends, as a wait in the process is woken, instead of the thread
 * finding out at its next look (at most a second apart).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { WaitsForNapTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { ended } from "./helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

it("ends a thread's wait for a task as the worker ends that task", async () => {
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], worker: { concurrency: 4 }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const file = join(dir, "waits.txt");
  // A nap of 1.3 s: looking at 20, 40, 80 ... ms and then every second, the thread would look
  // next about 2.27 s after it began to wait, nearly a second after the nap ended.
  const waiter = await runtime.run(() => Task.startNew(WaitsForNapTask, { file, napMs: 1_300 }, { maxAttempts: 1 }));
  assert.equal((await ended(runtime, waiter.id)).state, "succeeded");
  const lateMs = Number(readFileSync(file, "utf8").trim());
  assert.ok(lateMs >= 0 && lateMs < 400, `the wait returned ${lateMs} ms after the task ended`);
});
