/**
 * The SQLite store while another connection holds the database's write lock: its calls wait
 * without blocking the event loop, in the order they were made, and give up with a clear error
 * after busyTimeoutMs, having changed nothing.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, it } from "node:test";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

/** Another process's connection to the same file, holding the write lock until released. */
function lockHolder(path: string): { release(): void } {
  const other = new Database(path);
  other.exec("BEGIN IMMEDIATE");
  after(() => other.close());
  return {
    release() {
      other.exec("COMMIT");
    },
  };
}

/** How many turns the event loop made while `promise` was pending. */
async function turnsWhile<T>(promise: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let settled = false;
  const spin = (): void => {
    if (settled) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return { value: await promise, turns };
  } finally {
    settled = true;
  }
}

async function openDriver(options: { busyTimeoutMs?: number } = {}): Promise<{ driver: SqliteDriver; path: string }> {
  const path = tempDb(dir);
  const driver = new SqliteDriver({ path, watch: false, ...options });
  await driver.migrate();
  after(() => driver.close());
  return { driver, path };
}

it("waits for another connection's write lock without blocking the event loop, and runs the calls made meanwhile after it", async () => {
  const { driver, path } = await openDriver();
  const lock = lockHolder(path);
  const first = driver.taskInsert(task({ name: "First" }));
  // A read and a transaction made meanwhile wait behind it: both see the task.
  const count = driver.taskCountByState().then((counts) => counts.queued);
  const inTransaction = driver.transaction(async (tx) => tx.execute("SELECT count(*) AS n FROM underway_tasks"));
  setTimeout(() => lock.release(), 150);
  const { value: id, turns } = await turnsWhile(first);
  assert.ok(turns > 20, `the event loop made only ${turns} turns during a 150 ms wait`);
  assert.equal(await count, 1, "the read ran after the insert it was made after");
  assert.deepEqual(await inTransaction, [{ n: 1 }]);
  assert.equal((await driver.taskGet(id))?.name, "First");
});

it("gives up after busyTimeoutMs with an error that names the file and the limit, having stored nothing", async () => {
  const { driver, path } = await openDriver({ busyTimeoutMs: 100 });
  const lock = lockHolder(path);
  const began = performance.now();
  await assert.rejects(driver.taskInsert(task({ name: "Locked" })), (error: Error) => {
    assert.match(error.message, /stayed locked by another connection for \d+ ms \(busyTimeoutMs 100\)/);
    assert.ok(error.message.includes(path), error.message);
    assert.equal((error.cause as { code?: string }).code, "SQLITE_BUSY");
    return true;
  });
  const waited = performance.now() - began;
  assert.ok(waited >= 100, `gave up after ${waited.toFixed(0)} ms`);
  await assert.rejects(
    driver.transaction(async () => undefined),
    /stayed locked/,
  );
  lock.release();
  // Nothing was stored, and the store works again.
  assert.equal((await driver.taskCountByState()).queued, 0);
  await driver.taskInsert(task({ name: "Later" }));
  assert.equal((await driver.taskCountByState()).queued, 1);
});

it("refuses a busyTimeoutMs that is not a number of milliseconds", () => {
  for (const busyTimeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new SqliteDriver({ path: tempDb(dir), busyTimeoutMs, watch: false }), /busyTimeoutMs must be a number of milliseconds >= 0/);
  }
});

it("lets close() go ahead of a call that waits for the lock: the call fails, saying the store is closing", async () => {
  const { driver, path } = await openDriver();
  lockHolder(path);
  // Expected from the start: the call may fail before close() resolves.
  const waiting = assert.rejects(driver.taskInsert(task({ name: "Waiting" })), /is closing/);
  const began = performance.now();
  await driver.close();
  assert.ok(performance.now() - began < 1_000, `close() took ${(performance.now() - began).toFixed(0)} ms`);
  await waiting;
});

it("waits for a lock while it opens the file, as another process turns a new file to WAL", async () => {
  const path = tempDb(dir);
  // Another thread (as another process would) holds the new file's exclusive lock for 300 ms.
  const holder = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
     const Database = require(workerData.module);
     const db = new Database(workerData.path);
     db.exec("BEGIN EXCLUSIVE; CREATE TABLE t (x); ");
     parentPort.postMessage("locked");
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
     db.exec("COMMIT");
     db.close();`,
    { eval: true, workerData: { path, module: createRequire(import.meta.url).resolve("better-sqlite3") } },
  );
  after(() => holder.terminate());
  await new Promise((resolve) => holder.once("message", resolve));
  const driver = new SqliteDriver({ path, watch: false });
  after(() => driver.close());
  await driver.migrate();
  assert.equal((await driver.taskCountByState()).queued, 0);
});
