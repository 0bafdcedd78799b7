/**
 * The page size of the SQLite store's files: a file the store creates gets the store's own (half
 * SQLite's default, so a commit writes half the bytes to the log); a file that already has pages
 * keeps its size and works as before.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

function pageSizeOf(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma("page_size", { simple: true }) as number;
  } finally {
    db.close();
  }
}

async function roundTrip(path: string): Promise<void> {
  const driver = new SqliteDriver({ path, watch: false });
  after(() => driver.close());
  await driver.migrate();
  const id = await driver.taskInsert(task({ name: "Sized" }));
  const [claimed] = await driver.taskClaim({ workerId: "w", leaseMs: 10_000, limit: 1 });
  assert.equal(claimed?.id, id);
  assert.deepEqual((await driver.taskCompleteMany([{ kind: "succeeded", id, runSeq: claimed.runSeq }])).rejected, []);
  assert.equal((await driver.taskGet(id))?.state, "succeeded");
  await driver.close();
}

it("creates a new database file with 2,048-byte pages", async () => {
  const path = tempDb(dir);
  await roundTrip(path);
  assert.equal(pageSizeOf(path), 2048);
});

it("keeps the page size of a file that already has pages, and works on it", async () => {
  const path = tempDb(dir);
  const made = new Database(path);
  made.pragma("journal_mode = WAL");
  made.exec("CREATE TABLE application_table (x INTEGER)");
  made.close();
  assert.equal(pageSizeOf(path), 4096);
  await roundTrip(path);
  assert.equal(pageSizeOf(path), 4096);
  // Opened again: still its own size, its tasks still there.
  await roundTrip(path);
  assert.equal(pageSizeOf(path), 4096);
});
