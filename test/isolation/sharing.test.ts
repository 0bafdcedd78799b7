/**
 * How the pool judges a class's run time, which decides how many of its attempts share a thread:
 * by what each attempt took of its thread, not by the wall time it spent beside the others.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { ThreadPool } from "../../src/worker/isolation/pool.ts";
import { ChunkedTask, OtherChunkedTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

/** The thread of each task numbered from `from` on, from the ledger's lines (n:taskId:threadId:attempt). */
function threadsFrom(file: string, from: number): string[] {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(":"))
    .filter((fields) => Number(fields[0]) >= from)
    .map((fields) => fields[2]!);
}

/** A runtime with thread isolation at this concurrency, started, stopped after the test. */
async function started(concurrency: number): Promise<Runtime> {
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], worker: { concurrency }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}

function succeeded(runtime: Runtime, ids: readonly string[]): Promise<unknown> {
  return until(async () => {
    for (const id of ids) if ((await runtime.getTask(id)).state !== "succeeded") return false;
    return true;
  }, "the tasks to succeed", 20_000);
}

it("keeps a short class packed on one thread when many of its attempts ran there side by side", async () => {
  const concurrency = 16;
  const runtime = await started(concurrency);
  const file = join(dir, "sharing.txt");
  const batch = async (from: number, count: number, chunks: number, chunkMs: number): Promise<void> => {
    const handles = await runtime.run(() =>
      Task.startNewMany(
        ChunkedTask,
        Array.from({ length: count }, (_, i) => ({ file, n: from + i, chunks, chunkMs, immediate: true })),
      ),
    );
    await succeeded(runtime, handles.map((h) => h.id));
  };
  // Proven short (runs that barely run): the class's attempts share a thread.
  await batch(0, 40, 0, 0);
  // Sixteen at once (as many as a class that is short but not tiny puts on one thread), each
  // working 3 chunks of 0.1 ms and yielding after each: the others' chunks run between its own,
  // so each ends about 5 ms after it began, but it took about 0.3 ms of its thread.
  await batch(1_000, concurrency, 3, 0.1);
  await batch(2_000, concurrency, 3, 0.1);
  // Still short (under 2 ms), the class's attempts still go to the fullest thread with room: the
  // last sixteen ran on one. Judged by wall time, they would be spread over the threads.
  const last = threadsFrom(file, 2_000);
  assert.equal(last.length, concurrency);
  assert.equal(new Set(last).size, 1, `the last sixteen ran on one thread: ${last.join(",")}`);
});

it("counts a long synchronous stretch of an attempt whole, however many attempts share its thread", async () => {
  // What the threads report of each attempt, as the pool receives it.
  const measured: { name: string; ms: number }[] = [];
  const runMeasured = Object.getOwnPropertyDescriptor(ThreadPool.prototype, "runMeasured")!.value as ThreadPool["runMeasured"];
  ThreadPool.prototype.runMeasured = function (this: ThreadPool, name: string, ms: number) {
    measured.push({ name, ms });
    return runMeasured.call(this, name, ms);
  };
  after(() => {
    ThreadPool.prototype.runMeasured = runMeasured;
  });
  const concurrency = 16;
  const runtime = await started(concurrency);
  const file = join(dir, "stretch.txt");
  // Both classes proven to barely run: their attempts share one thread.
  const warm = await runtime.run(async () => [
    ...(await Task.startNewMany(ChunkedTask, Array.from({ length: 40 }, (_, n) => ({ file, n, chunks: 0, chunkMs: 0 })))),
    ...(await Task.startNewMany(OtherChunkedTask, Array.from({ length: 16 }, (_, n) => ({ file, n: 100 + n, chunks: 0, chunkMs: 0 })))),
  ]);
  await succeeded(runtime, warm.map((h) => h.id));
  // Fifteen that keep yielding (running, but barely using the thread), then one that works 40 ms
  // at once before its first await, beside them on their thread.
  const yielding = await runtime.run(() =>
    Task.startNewMany(ChunkedTask, Array.from({ length: concurrency - 1 }, (_, n) => ({ file, n: 1_000 + n, chunks: 2_000, chunkMs: 0, immediate: true }))),
  );
  await until(async () => (await runtime.countTasks()).running === concurrency - 1, "the fifteen to run");
  const long = await runtime.run(() => Task.startNew(OtherChunkedTask, { file, n: 2_000, chunks: 1, chunkMs: 40 }));
  await succeeded(runtime, [long.id, ...yielding.map((h) => h.id)]);
  assert.equal(new Set(threadsFrom(file, 1_000)).size, 1, "the long one ran on the thread of the fifteen");
  const last = measured.filter((m) => m.name === "OtherChunkedTask").at(-1)!;
  // Divided among the sixteen running, it would read about 2.5 ms.
  assert.ok(last.ms >= 40, `the long one measured ${last.ms} ms`);
});
