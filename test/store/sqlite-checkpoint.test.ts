/**
 * The SQLite store's checkpoint thread: the write-ahead log is copied back into the database file
 * from a connection of its own, the store's connection keeps a wider automatic checkpoint only as a
 * net, and it checkpoints by itself again when the thread cannot run.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { Checkpointer } from "../../src/store/sqlite/checkpointer.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const dir = tempDir();

/** The store connection's automatic checkpoint, in pages. */
function autoCheckpoint(driver: SqliteDriver): number {
  return (driver as unknown as { db: { pragma(sql: string, o: { simple: true }): number } }).db.pragma("wal_autocheckpoint", { simple: true });
}

it("checkpoints from its thread: the database file takes the log's pages while the store's connection never reaches its own mark", async () => {
  const path = tempDb(dir);
  const driver = new SqliteDriver({ path });
  await driver.migrate();
  assert.equal(autoCheckpoint(driver), 1_000, "SQLite's default until the thread starts");
  const before = statSync(path).size;
  // Single inserts: a few hundred commits of several pages each, under the net's 4,000 pages.
  for (let i = 0; i < 300; i++) await driver.taskInsert(task());
  assert.equal(autoCheckpoint(driver), 4_000, "the thread runs: the connection's own checkpoint is only a net");
  const walPages = statSync(`${path}-wal`).size / 4_096;
  assert.ok(walPages < 4_000, `the log (${Math.round(walPages)} pages) stays under the net, so only the thread can have copied it`);
  await until(() => statSync(path).size > before, "the database file to grow by the thread's checkpoint");
  assert.equal((await driver.taskCountByState()).queued, 300);
  await driver.close();
  // The thread closed its connection first: the store's was the last, and removed the log.
  assert.equal(existsSync(`${path}-wal`), false);
});

it("leaves the checkpoint to SQLite when asked to (checkpointThread: false)", async () => {
  const path = tempDb(dir);
  const driver = new SqliteDriver({ path, checkpointThread: false });
  await driver.migrate();
  for (let i = 0; i < 300; i++) await driver.taskInsert(task());
  assert.equal(autoCheckpoint(driver), 1_000);
  await driver.close();
});

it("gives the checkpoint back to the store's connection when its thread cannot open the database", async () => {
  const set: number[] = [];
  const checkpointer = new Checkpointer(join(dir, "missing", "no.db"), (pages) => set.push(pages));
  for (let i = 0; i < 100; i++) checkpointer.note();
  await until(() => set.length === 2, "the thread to fail and the connection to take the checkpoint back");
  assert.deepEqual(set, [4_000, 1_000]);
  // Asked again, it does not start another thread.
  for (let i = 0; i < 300; i++) checkpointer.note();
  assert.deepEqual(set, [4_000, 1_000]);
  await checkpointer.close();
});
