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

describe("isolated tasks whose parameters column holds no bytes (SQLite, edited by hand)", () => {
  it("fail as undecodable, without retrying, alone or held in a chain, and the others run", async () => {
    const runtime = createRuntime({
      db: tempDb(tempDir()),
      logger: false,
      tasks: [FIXTURES],
      isolation: { mode: "thread" },
      worker: { concurrency: 1 },
    });
    await runtime.start();
    after(() => runtime.stop({ graceMs: 0 }));
    // Stored and altered in one transaction: no worker sees them before, and, claimed together,
    // the tasks of one class chain in the one slot.
    const { bad, good } = await runtime.transaction(async (tx) => {
      const handles = await Task.startNewMany(SumTask, Array.from({ length: 30 }, (_, i) => ({ values: [i, 1] })));
      const altered = [0, 5, 6, 17];
      await tx.execute("UPDATE underway_tasks SET parameters = 'not bytes' WHERE id = ?", [Number(handles[0]!.id)]);
      await tx.execute("UPDATE underway_tasks SET parameters = 42 WHERE id = ?", [Number(handles[5]!.id)]);
      await tx.execute("UPDATE underway_tasks SET parameters = 4.5 WHERE id = ?", [Number(handles[6]!.id)]);
      await tx.execute("UPDATE underway_tasks SET parameters = '' WHERE id = ?", [Number(handles[17]!.id)]);
      return { bad: altered.map((i) => handles[i]!), good: handles.filter((_, i) => !altered.includes(i)) };
    });
    for (const handle of bad) {
      const error = (await runtime.waitForTask(handle.id, { timeoutMs: 20_000 }).catch((e: unknown) => e)) as TaskFailedError;
      assert.ok(error instanceof TaskFailedError, `expected task ${handle.id} to fail, got ${String(error)}`);
      assert.equal(error.task.state, "dead");
      assert.equal(error.task.attempt, 1);
      assert.equal(error.task.lastError?.name, "TaskDeserializationError");
      assert.match(error.task.lastError?.message ?? "", /expected the encoded parameters as a Uint8Array/);
    }
    for (const handle of good) assert.ok(await handle.result({ timeoutMs: 20_000 }));
  });
});
