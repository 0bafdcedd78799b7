/**
 * Text a task gives the store (its error, its progress message) is kept on both stores, whatever
 * characters it holds: PostgreSQL refuses NUL in text and jsonb and a lone surrogate in jsonb, and
 * an error it could not store would be lost (the attempt would end as a lost lease instead).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Task, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
import { until } from "../helpers.ts";
import { newStore, runtimeOn, STORES } from "../scheduling/stores.ts";

class ThrowsOddText implements IBackgroundTask<{ n: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  async run(_p: { n: number }, context: TaskContext): Promise<void> {
    context.reportProgress(0.5, "header \0 at byte 3");
    await new Promise((resolve) => setTimeout(resolve, 400));
    // A message cut at the store's limit would split this pair: the high half is left alone.
    const error = new Error(`cannot parse header \0\u0001 at byte 3 \ud800 ${"x".repeat(3_964)}\u{1F600}`);
    error.name = "Header\0Error";
    throw error;
  }
}

for (const store of STORES) {
  describe(`text a task gives the store, on ${store}`, () => {
    it("keeps an error and a progress message that hold NUL or a lone surrogate, with U+FFFD in their place", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [ThrowsOddText] });
      const handle = await runtime.run(() => Task.startNew(ThrowsOddText, { n: 1 }));
      const progressed = await until(async () => {
        const task = await runtime.getTask(handle.id);
        return task.progressMessage !== null ? task : null;
      }, "the progress to be stored");
      assert.equal(progressed.progressMessage, "header \uFFFD at byte 3");
      await assert.rejects(handle.wait({ timeoutMs: 10_000 }));
      const task = await runtime.getTask(handle.id);
      assert.equal(task.state, "dead");
      assert.equal(task.lastError?.name, "Header\uFFFDError");
      assert.ok(task.lastError?.message.startsWith("cannot parse header \uFFFD\u0001 at byte 3 \uFFFD x"), task.lastError?.message.slice(0, 40));
      assert.equal(task.lastError?.message.length, 4_000);
      assert.ok(task.lastError?.message.endsWith("x\uFFFD"), "the half of a pair the cut left is replaced");
    });
  });
}
