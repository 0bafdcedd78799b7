/**
 * Upgrading a SQLite store to ids that are never given twice (migration 0012 rebuilds the task
 * table with AUTOINCREMENT): every task, failed attempt and continuation edge survives as it was,
 * and the next id is past every id the store is known to have given, a deleted predecessor's
 * included.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import Database from "better-sqlite3";
import { loadMigrations } from "../../src/store/migrations.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();
const REBUILD = 12;

/** A store as an underway before the rebuild left it: migrations up to 0011, and some work. */
function olderStore(path: string): void {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("foreign_keys = ON");
    db.exec("CREATE TABLE underway_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of loadMigrations(new URL("../../src/store/sqlite/migrations/", import.meta.url))) {
      if (m.version >= REBUILD) continue;
      db.exec(m.sql);
      db.prepare("INSERT INTO underway_migrations (version, name, applied_at) VALUES (?, ?, 0)").run(m.version, m.name);
    }
    const insert = db.prepare(
      `INSERT INTO underway_tasks (id, name, state, parameters, run_at, attempt, max_attempts, run_seq, created_at, updated_at,
         last_error, result, fair_key, dedup_key, waiting_for, user_id, user_context)
       VALUES (?, ?, ?, ?, 10, ?, 3, ?, 5, 6, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run(3, "Failed", "failed", Buffer.from([0x80]), 1, 1, '{"message":"m"}', null, "tenant-a", "k1", 0, "u1", '{"culture":"en-US"}');
    insert.run(7, "Done", "succeeded", Buffer.from([0x81, 0xa1, 0x61, 0x01]), 1, 1, null, Buffer.from([0x2a]), "", null, 0, null, null);
    insert.run(9, "Waits", "queued", Buffer.from([0x80]), 0, 0, null, null, "", null, 2, null, null);
    db.prepare("INSERT INTO underway_task_errors (task_id, attempt, at, name, message, stack) VALUES (3, 1, 8, 'Error', 'first', 's')").run();
    // Task 9 waits for 7 and for 40, a predecessor deleted since: its id must not come back.
    db.prepare("INSERT INTO underway_continuations (parent_id, child_id, only_on_success) VALUES (7, 9, 1), (40, 9, 0)").run();
  } finally {
    db.close();
  }
}

function snapshot(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    return {
      tasks: db.prepare("SELECT * FROM underway_tasks ORDER BY id").all(),
      errors: db.prepare("SELECT * FROM underway_task_errors ORDER BY task_id, attempt, at").all(),
      edges: db.prepare("SELECT * FROM underway_continuations ORDER BY parent_id, child_id").all(),
      indexes: db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'underway_tasks' AND sql IS NOT NULL ORDER BY name").all(),
    };
  } finally {
    db.close();
  }
}

it("keeps every task, failed attempt and edge through the rebuild, and gives ids past every id given", async () => {
  const path = tempDb(dir);
  olderStore(path);
  const before = snapshot(path);
  const driver = new SqliteDriver({ path, watch: false });
  try {
    await driver.migrate();
    const upgraded = snapshot(path);
    assert.deepEqual(upgraded.tasks, before.tasks);
    assert.deepEqual(upgraded.errors, before.errors);
    // Every edge of the older store is pending (consumed ones were deleted then).
    assert.deepEqual(upgraded.edges, (before.edges ?? []).map((e) => ({ ...(e as object), consumed: 0 })));
    assert.deepEqual(upgraded.indexes, before.indexes, "the same indexes, by name and definition");
    const id = await driver.taskInsert(task({ name: "After" }));
    assert.equal(id, "41", "past the deleted predecessor 40");
    // Foreign keys are on again: deleting a task still takes its failed attempts with it.
    assert.equal(await driver.taskDelete({ id: "3" }), true);
    assert.deepEqual(snapshot(path).errors, []);
  } finally {
    await driver.close();
  }
});

it("refuses an upgrade that would leave a row referring to a missing task, and changes nothing", async () => {
  const path = tempDb(dir);
  olderStore(path);
  const db = new Database(path);
  db.pragma("foreign_keys = OFF");
  // A row written by a connection without foreign keys, pointing at a task that is not there.
  db.prepare("INSERT INTO underway_task_errors (task_id, attempt, at, name, message) VALUES (99, 1, 1, 'Error', 'orphan')").run();
  db.close();
  const before = snapshot(path);
  const driver = new SqliteDriver({ path, watch: false });
  try {
    await assert.rejects(driver.migrate(), /cannot migrate the database .*: 1 row\(s\) would refer to nothing \(first: underway_task_errors row \d+ refers to a missing underway_tasks row\); nothing was changed/);
    assert.deepEqual(snapshot(path), before);
    const check = new Database(path, { readonly: true });
    const version = check.prepare("SELECT max(version) AS v FROM underway_migrations").get() as { v: number };
    check.close();
    assert.equal(version.v, REBUILD - 1);
  } finally {
    await driver.close();
  }
});
