/**
 * The SQLite store's file watch: it wakes workers when another connection commits, and only a
 * store that has someone to wake watches (each watched write costs the writer's process inotify
 * work in the kernel and an event to read).
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

/** Whether the driver holds a watch on its folder (internal: there is no public way to ask). */
function watching(driver: SqliteDriver): boolean {
  return (driver as unknown as { watcher: unknown }).watcher !== null;
}

/** Resolves at the listener's first call, or rejects after `ms`. */
function nextWake(driver: SqliteDriver, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no wake-up within ${ms} ms`));
    }, ms);
    const unsubscribe = driver.onWake(() => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

it("watches only once a listener wants wake-ups: a store that only starts tasks does not", async () => {
  const path = tempDb(dir);
  const producer = new SqliteDriver({ path });
  try {
    await producer.migrate();
    await producer.taskInsert(task());
    assert.equal(watching(producer), false);
    const unsubscribe = producer.onWake(() => undefined);
    assert.equal(watching(producer), true);
    unsubscribe();
  } finally {
    await producer.close();
  }
});

/** Two connections to one new file, migrated: a worker's and a producer's. */
async function twoConnections(test: (worker: SqliteDriver, producer: SqliteDriver) => Promise<void>): Promise<void> {
  const path = tempDb(dir);
  const worker = new SqliteDriver({ path });
  const producer = new SqliteDriver({ path });
  try {
    await worker.migrate();
    await producer.migrate();
    await test(worker, producer);
  } finally {
    await producer.close();
    await worker.close();
  }
}

it("wakes a listener when another connection commits a task", () =>
  twoConnections(async (worker, producer) => {
    const woke = nextWake(worker, 5_000);
    await producer.taskInsert(task());
    await woke;
  }));

it("never watches with watch: false, nor after close", async () => {
  const unwatched = new SqliteDriver({ path: tempDb(dir), watch: false });
  const closed = new SqliteDriver({ path: tempDb(dir) });
  try {
    await unwatched.migrate();
    unwatched.onWake(() => undefined);
    assert.equal(watching(unwatched), false);
  } finally {
    await unwatched.close();
    await closed.close();
  }
  closed.onWake(() => undefined);
  assert.equal(watching(closed), false);
});

it("does not wake its listeners for its own commits, and still does for another connection's after them", () =>
  twoConnections(async (worker, producer) => {
    let wakes = 0;
    worker.onWake(() => wakes++);
    // Its own writes: a worker would claim again after each of them, and find nothing.
    await worker.taskInsert(task());
    await worker.taskClaim({ workerId: "w", leaseMs: 60_000, limit: 10 });
    await worker.taskInsert(task());
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(wakes, 0, "no wake-up for its own commits");
    const woke = nextWake(worker, 5_000);
    await producer.taskInsert(task());
    await woke;
  }));
