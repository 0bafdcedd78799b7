/**
 * The SQLite store's checkpoint thread: the write-ahead log is copied back into the database file
 * from a connection of its own, the store's connection keeps a wider automatic checkpoint only as a
 * net, and it checkpoints by itself again when the thread cannot run.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";
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

it("lets a process whose store was never closed exit by itself", async () => {
  const fixture = join(import.meta.dirname, "..", "fixtures", "unclosed-store.ts");
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", fixture, tempDb(dir)], { timeout: 30_000 });
  assert.equal(stdout, "written\n");
});

/** The process's OS threads (Linux), or null elsewhere. */
function osThreads(): number | null {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
  } catch {
    return null;
  }
}

it("shares one checkpoint thread among the process's stores", async (t) => {
  if (osThreads() === null) return t.skip("counts threads through /proc (Linux)");
  const first = new SqliteDriver({ path: tempDb(dir) });
  await first.migrate();
  for (let i = 0; i < 150; i++) await first.taskInsert(task());
  const withOne = osThreads()!;
  const more = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const driver = new SqliteDriver({ path: tempDb(dir) });
      await driver.migrate();
      for (let i = 0; i < 150; i++) await driver.taskInsert(task());
      assert.equal(autoCheckpoint(driver), 4_000, "each store checkpoints through the thread");
      return driver;
    }),
  );
  // A worker thread of its own would be several OS threads more per store.
  assert.ok(osThreads()! - withOne < 4, `threads ${withOne} -> ${osThreads()} with 4 more stores`);
  for (const driver of [first, ...more]) await driver.close();
});

it("closes once for every caller: the second close also waits for the thread to let go", async () => {
  const path = tempDb(dir);
  const driver = new SqliteDriver({ path });
  await driver.migrate();
  for (let i = 0; i < 150; i++) await driver.taskInsert(task());
  void driver.close();
  await driver.close();
  assert.equal(existsSync(`${path}-wal`), false, "the store's connection was the last: it removed the log");
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
