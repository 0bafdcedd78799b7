/**
 * How the pool judges a class's run time, which decides how many of its attempts share a thread:
 * by what each attempt took of its thread, not by the wall time it spent beside the others.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { ChunkedTask } from "../fixtures/isolation-tasks.ts";
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

it("keeps a short class packed on one thread when many of its attempts ran there side by side", async () => {
  const concurrency = 16;
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency },
    isolation: { mode: "thread" },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const file = join(dir, "sharing.txt");
  const batch = async (from: number, count: number, chunks: number, chunkMs: number): Promise<void> => {
    const handles = await runtime.run(() =>
      Task.startNewMany(
        ChunkedTask,
        Array.from({ length: count }, (_, i) => ({ file, n: from + i, chunks, chunkMs, immediate: true })),
      ),
    );
    await until(async () => {
      for (const h of handles) if ((await runtime.getTask(h.id)).state !== "succeeded") return false;
      return true;
    }, "the batch to succeed", 20_000);
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
