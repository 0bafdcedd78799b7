/**
 * An isolated attempt's parameters are decoded in its thread, not on the worker's: stored bytes
 * that cannot be decoded still fail the task for good on its first attempt, with the codec's
 * error, and the worker goes on with the next task.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createRuntime, Task, TaskDeserializationError, TaskFailedError } from "../../src/index.ts";
import { SumTask } from "../fixtures/isolation-tasks.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

for (const store of ["sqlite", "postgres"] as const) {
  describe(`isolated tasks with corrupt parameters (${store})`, () => {
    const schema = store === "postgres" ? tempSchema() : null;

    it("fail in their thread, without retrying, and the worker goes on", async () => {
      const db = schema ? `${TEST_POSTGRES_URL}?schema=${schema}` : tempDb(tempDir());
      const runtime = createRuntime({ db, logger: false, tasks: [FIXTURES], isolation: { mode: "thread" } });
      await runtime.start();
      after(() => runtime.stop({ graceMs: 0 }));
      const table = schema ? `"${schema}".underway_tasks` : "underway_tasks";
      const [value, id] = schema ? ["$1", "$2"] : ["?", "?"];
      // Stored and corrupted in one transaction: no worker sees the good bytes.
      const bad = await runtime.transaction(async (tx) => {
        const handle = await Task.startNew(SumTask, { values: [1, 2] });
        await tx.execute(`UPDATE ${table} SET parameters = ${value} WHERE id = ${id}`, [Buffer.from([0xc1, 0xff, 0x00]), Number(handle.id)]);
        return handle;
      });
      const good = await runtime.run(() => Task.startNew(SumTask, { values: [3, 4] }));
      const error = (await runtime.waitForTask(bad.id, { timeoutMs: 20_000 }).catch((e: unknown) => e)) as TaskFailedError;
      assert.ok(error instanceof TaskFailedError, `expected the task to fail, got ${String(error)}`);
      assert.equal(error.task.state, "dead");
      assert.equal(error.task.attempt, 1);
      assert.equal(error.task.lastError?.name, new TaskDeserializationError("parameters", "x").name);
      assert.deepEqual(await good.result({ timeoutMs: 20_000 }), { total: 7 });
    });
  });
}
