import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { ChunkedTask, NapTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

function ledger(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
}

/**
 * Holds up the worker's own thread for `ms` (a long GC, a stalled disk, a busy handler), in a
 * callback after which the event loop runs its timers before it reads the threads' messages, as
 * after any I/O callback or setImmediate.
 */
function stallWorkerThread(ms: number): Promise<void> {
  return new Promise<void>((resolve) =>
    setImmediate(() => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        // spins
      }
      resolve();
    }),
  );
}

async function succeeded(runtime: Runtime, ids: readonly string[]): Promise<void> {
  await until(async () => {
    for (const id of ids) if ((await runtime.getTask(id)).state !== "succeeded") return false;
    return true;
  }, "the tasks to succeed", 10_000);
}

it("does not blame a shared thread for a stall of the worker's own thread: its attempts end once, not handed back", async () => {
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 8 },
    isolation: { mode: "thread", abortGraceMs: 200 },
  });
  const released: string[] = [];
  runtime.on("taskReleased", (e) => released.push(e.taskId));
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const file = join(dir, "stall.txt");
  // Proven short: the class shares a thread.
  const warm = await runtime.run(() => Task.startNewMany(ChunkedTask, Array.from({ length: 24 }, (_, n) => ({ file, n, chunks: 0, chunkMs: 0 }))));
  await succeeded(runtime, warm.map((h) => h.id));

  // Three on one shared thread, working in chunks of 150 ms (2.25 s of work in all): the thread
  // answers the watchdog's pings between chunks, well within its second ...
  const waiting = await runtime.run(() =>
    Task.startNewMany(ChunkedTask, Array.from({ length: 3 }, (_, i) => ({ file, n: 100 + i, chunks: 5, chunkMs: 150 }))),
  );
  await until(async () => (await runtime.countTasks()).running === 3, "the three to run");
  await new Promise((resolve) => setTimeout(resolve, 150));
  // ... while the worker's own thread is held up for longer than a shared thread may stay silent,
  // in a callback after which the event loop runs its timers (the watchdog) before it reads the
  // threads' messages (their answers), as after any I/O callback or setImmediate.
  await stallWorkerThread(1_300);
  await succeeded(runtime, waiting.map((h) => h.id));
  assert.deepEqual(
    released.filter((id) => waiting.some((h) => h.id === id)),
    [],
    "none of the three handed back",
  );
  const lines = ledger(file).filter((line) => Number(line.split(":")[0]) >= 100);
  assert.deepEqual(
    lines.map((line) => line.split(":")[0]).sort(),
    ["100", "101", "102"],
    "each ran once: the thread was not stopped and its attempts not run again",
  );
  for (const h of waiting) assert.equal((await runtime.getTask(h.id)).attempt, 1);
  assert.equal(new Set(lines.map((line) => line.split(":")[2])).size, 1, "the three shared one thread");
});

it("starts tasks held ahead whose hold ran out during a stall of the worker's own thread in the slots freed meanwhile, without handing them back", async () => {
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 2, leaseMs: 30_000 },
    isolation: { mode: "thread" },
  });
  const released: string[] = [];
  runtime.on("taskReleased", (e) => released.push(e.taskId));
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  // Threads booted and the class known.
  const warm = await runtime.run(() => Task.startNewMany(NapTask, [{ ms: 0 }, { ms: 0 }]));
  await succeeded(runtime, warm.map((h) => h.id));

  // Two run (naps of 300 ms in their threads), two are held ahead of the slots (one second each).
  const handles = await runtime.run(() => Task.startNewMany(NapTask, [300, 300, 0, 0].map((ms) => ({ ms }))));
  await until(() => runtime.worker?.activeCount === 2, "the first two runs");
  assert.equal((await runtime.countTasks()).running, 4);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // The worker's thread is held up past the hold: the naps end meanwhile, their messages unread.
  await stallWorkerThread(1_300);
  await succeeded(runtime, handles.map((h) => h.id));
  assert.deepEqual(released, [], "none handed back");
  for (const h of handles) assert.equal((await runtime.getTask(h.id)).attempt, 1);
});
