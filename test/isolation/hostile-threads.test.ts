/**
 * Task code in a thread that talks or sleeps where the worker listens: messages posted on
 * parentPort, a synchronous sleep in Atomics.wait, a replaced Atomics.wait. The worker's process
 * lives on, the thread's priority is the only one lowered, and other tasks run.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { NapTask, PatchedSpinTask, PostsJunkTask, SyncSleepTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

async function isolatedRuntime(): Promise<Runtime> {
  const runtime = createRuntime({
    db: tempDb(tempDir()),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 4 },
    isolation: { mode: "thread", abortGraceMs: 200 },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}

/** The scheduling policy and nice value of the process's main thread (Linux). */
function mainThreadPriority(): string | null {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, "latin1").split(") ")[1]?.split(" ") ?? [];
    // Fields from the state (3rd): nice is the 19th, policy the 41st.
    return `nice ${fields[16]} policy ${fields[38]}`;
  } catch {
    return null;
  }
}

describe("hostile and sleeping task threads", () => {
  it("ignores what task code posts on parentPort: the task succeeds, the worker's thread keeps its priority", async () => {
    const runtime = await isolatedRuntime();
    const before = mainThreadPriority();
    const handle = await runtime.run(() => Task.startNew(PostsJunkTask, { pid: process.pid }));
    assert.equal(await handle.result({ timeoutMs: 10_000 }), 7);
    // A spinning task beside it: had the fake "ready" been taken, the worker's own thread would be lowered now.
    const spinning = await runtime.run(() => Task.startNew(PatchedSpinTask, null));
    const nap = await runtime.run(() => Task.startNew(NapTask, { ms: 20 }));
    await nap.wait({ timeoutMs: 10_000 });
    await assert.rejects(spinning.wait({ timeoutMs: 10_000 }), /TaskTimeoutError|timed out|timeout/i);
    assert.equal(mainThreadPriority(), before);
  });

  it("lets a task sleep synchronously in Atomics.wait beside other work", async () => {
    const runtime = await isolatedRuntime();
    const sleeps = await Promise.all([runtime.run(() => Task.startNew(SyncSleepTask, { ms: 400 })), runtime.run(() => Task.startNew(SyncSleepTask, { ms: 700 }))]);
    // Others work meanwhile, so the watchdog would pause a thread that does not answer.
    for (let i = 0; i < 10; i++) await (await runtime.run(() => Task.startNew(NapTask, { ms: 30 }))).wait({ timeoutMs: 10_000 });
    for (const sleep of sleeps) assert.equal(await sleep.result({ timeoutMs: 10_000 }), "slept");
  });
});
