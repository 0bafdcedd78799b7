/**
 * A task that runs away synchronously inside a store transaction, in its thread. On SQLite that
 * transaction holds the store's one write lock: the thread is stopped as soon as the watchdog
 * finds it blocked, its transaction rolled back, and every other task goes on. (On PostgreSQL it
 * holds only its own rows, and is throttled until its timeout as any other runaway.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Task } from "../../src/index.ts";
import { EntitySchemaQuery } from "../../src/platform/entities/query.ts";
import { CreateActivityTask, SpinInTransactionTask } from "../fixtures/platform-tasks.ts";
import { startPlatform } from "./helpers.ts";

describe("platform on sqlite", () => {
  it("stops a task that runs away inside a transaction, rolls it back, and the others run", async () => {
    const platform = await startPlatform("sqlite", { tasks: [SpinInTransactionTask, CreateActivityTask], worker: { concurrency: 4 } });
    const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
    const spinner = await platform.runAs(alice, () =>
      Task.startNewWithUserConnection(SpinInTransactionTask, { title: "never kept" }, { maxAttempts: 1, timeoutMs: 120_000 }),
    );
    const others = [];
    for (let i = 0; i < 3; i++) others.push(await platform.runAs(alice, () => Task.startNewWithUserConnection(CreateActivityTask, { title: `other ${i}` })));
    for (const other of others) assert.equal((await other.wait({ timeoutMs: 20_000 })).state, "succeeded");
    await assert.rejects(spinner.wait({ timeoutMs: 20_000 }), /ended dead/);
    assert.equal((await spinner.get()).lastError?.name, "TaskBlockedTransactionError");
    const titles = (await new EntitySchemaQuery(platform.userConnection(alice), "Activity").addColumn("Title").getEntityCollection()).map((r) => r.Title).sort();
    assert.deepEqual(titles, ["other 0", "other 1", "other 2"], "the runaway's save was rolled back");
  });
});
