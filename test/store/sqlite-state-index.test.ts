/**
 * SQLite's (state, id) index holds only the states a task rests in, so that an insert, a claim
 * and a completion write it once at most: queued and running tasks are read through the partial
 * indexes that hold them. Every read by state must still go through an index, not the table
 * (queued tasks in a list newest first while many wait excepted: they are read from the table's
 * end, where a backlog is).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { QUEUE_DEPTH } from "../../src/store/sqlite/composition.ts";
import { COUNTS_BY_STATE, listStateTerm, stateTerm, WAITING_UP_TO } from "../../src/store/sqlite/state-terms.ts";
import { TASK_STATES } from "../../src/tasks/types.ts";
import { tempDb, tempDir } from "../helpers.ts";

async function migrated(): Promise<Database.Database> {
  const path = tempDb(tempDir());
  const driver = new SqliteDriver({ path });
  await driver.migrate();
  await driver.close();
  return new Database(path, { readonly: true });
}

function plan(db: Database.Database, sql: string, ...params: unknown[]): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
}

/** A step that reads the whole table rather than an index. */
const tableScan = (detail: string): boolean => /^SCAN underway_tasks$/.test(detail);

describe("SQLite reads by task state", () => {
  it("has a state index without queued and running tasks", async () => {
    const db = await migrated();
    const row = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'underway_tasks_state'").get() as { sql: string };
    db.close();
    assert.match(row.sql, /\(state, id\) WHERE state NOT IN \('queued', 'running'\)$/);
  });

  it("counts each state, and all of them, through indexes", async () => {
    const db = await migrated();
    try {
      for (const state of TASK_STATES) {
        const steps = plan(db, `SELECT count(*) FROM (SELECT 1 FROM underway_tasks WHERE ${stateTerm(state)} LIMIT ?)`, 10);
        assert.ok(!steps.some(tableScan), `${state}: ${steps.join(" | ")}`);
        const index = state === "running" ? "underway_tasks_running" : state === "queued" ? "underway_tasks_fair(_key)?" : "underway_tasks_state";
        assert.ok(steps.some((d) => new RegExp(`USING (COVERING )?INDEX ${index}\\b`).test(d)), `${state}: ${steps.join(" | ")}`);
      }
      for (const [what, steps] of [
        ["every count", plan(db, COUNTS_BY_STATE)],
        ["queue depth", plan(db, QUEUE_DEPTH, 0, 0)],
      ] as const) {
        assert.ok(!steps.some(tableScan), `${what}: ${steps.join(" | ")}`);
      }
    } finally {
      db.close();
    }
  });

  it("lists each state newest first from an index in id order; queued ones from the table's end while many wait", async () => {
    const db = await migrated();
    try {
      for (const state of TASK_STATES) {
        for (const fewWaiting of [true, false]) {
          const steps = plan(db, `SELECT id FROM underway_tasks WHERE ${listStateTerm(state, fewWaiting)} ORDER BY id DESC LIMIT ?`, 51);
          if (state === "queued" && !fewWaiting) {
            assert.deepEqual(steps, ["SCAN underway_tasks"]);
            continue;
          }
          assert.ok(!steps.some(tableScan), `${state}: ${steps.join(" | ")}`);
          assert.ok(!steps.some((d) => /TEMP B-TREE/.test(d)), `${state} needs no sort: ${steps.join(" | ")}`);
        }
      }
      assert.ok(!plan(db, WAITING_UP_TO, 1_001).some(tableScan));
    } finally {
      db.close();
    }
  });
});
