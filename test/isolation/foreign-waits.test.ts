/**
 * A thread that does not answer because it sleeps synchronously in a wait of another realm (or
 * of WebAssembly), not because it spins: the watchdog lowers its priority but does not pause it,
 * since a pause delivered inside such a wait ends the whole process.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { ForeignWaitTask, NapTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

it("lets a task sleep in another realm's Atomics.wait while others work, and the worker lives on", async () => {
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], worker: { concurrency: 4 }, isolation: { mode: "thread", minThreads: 2 } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const sleeper = await runtime.run(() => Task.startNew(ForeignWaitTask, { ms: 2_500 }, { maxAttempts: 1 }));
  // Others working meanwhile make the watchdog throttle the silent thread.
  const others = [];
  for (let i = 0; i < 12; i++) {
    others.push(await runtime.run(() => Task.startNew(NapTask, { ms: 150 })));
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  assert.equal((await sleeper.wait({ timeoutMs: 20_000 })).state, "succeeded");
  for (const other of others) assert.equal((await other.wait({ timeoutMs: 20_000 })).state, "succeeded");
});
