import assert from "node:assert/strict";
import { it } from "node:test";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import type { TaskInsertParams } from "../../src/store/driver.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const dir = tempDir();

const task: TaskInsertParams = {
  name: "T",
  queue: "default",
  priority: 0,
  parameters: new Uint8Array([0xc0]),
  maxAttempts: 1,
  timeoutMs: 0,
  initiator: null,
  withUserConnection: false,
};

it("wakes on another connection's commits, not on its own", async () => {
  const file = tempDb(dir);
  const own = new SqliteDriver({ path: file });
  const other = new SqliteDriver({ path: file, watch: false });
  try {
    await own.migrate();
    await other.migrate();
    let wakes = 0;
    own.onWake(() => wakes++);
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50)); // file events on their way arrive
    // Its own commit: the runtime wakes its worker itself, the file watch does not.
    await own.taskInsert(task);
    await settle();
    assert.equal(wakes, 0);
    // Another connection's (another process's, say): a wake-up.
    await other.taskInsert(task);
    await until(() => wakes > 0, "a wake-up for the other connection's commit");
    await settle();
    assert.equal(wakes, 1);
  } finally {
    await other.close();
    await own.close();
  }
});
