/**
 * Delayed tasks (options.delayMs or its alias delay / options.runAt, by the database clock) and retention of ended
 * tasks, on both stores, with the clock moved instead of waited for.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import type { Logger } from "../../src/tasks/logger.ts";
import { queriesFor } from "../../src/store/postgres/queries.ts";
import { SQLITE_RETENTION_SELECT, SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { TEST_POSTGRES_URL } from "../helpers.ts";
import { newStore, runtimeOn, STORES } from "./stores.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

class Later implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

class Breaks implements IBackgroundTask<{ n: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {
    throw new Error("broken");
  }
}

for (const store of STORES) {
  describe(`delays and retention (${store})`, () => {
    it("runs a delayed task only once the database clock reaches its run-at", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Later] });
      const now = await runtime.driver.clockNow();
      const delayed = await runtime.run(() => Task.startNew(Later, { n: 1 }, { delayMs: 10 * 60_000 }));
      const at = await runtime.run(() => Task.startNew(Later, { n: 2 }, { runAt: new Date(now + HOUR) }));
      assert.equal((await delayed.get()).runAt.getTime() - now >= 10 * 60_000, true);
      assert.equal((await at.get()).runAt.getTime(), now + HOUR);
      runtime.worker?.wake();
      await new Promise((r) => setImmediate(r));
      await runtime.worker?.heartbeat();
      assert.equal((await delayed.get()).state, "queued");
      runtime.driver.clockShift(10 * 60_000 + 1_000);
      runtime.worker?.wake();
      await delayed.wait({ timeoutMs: 5_000 });
      assert.equal((await at.get()).state, "queued");
      runtime.driver.clockShift(HOUR);
      runtime.worker?.wake();
      await at.wait({ timeoutMs: 5_000 });
      await assert.rejects(runtime.run(() => Task.startNew(Later, { n: 3 }, { delayMs: -1 })), /options.delayMs must be a number of ms >= 0, got -1/);
      await assert.rejects(runtime.run(() => Task.startNew(Later, { n: 3 }, { runAt: new Date("nope") })), /options.runAt must be a valid Date/);
    });

    it("takes options.delay as another name for delayMs, and refuses both at once", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Later] });
      const now = await runtime.driver.clockNow();
      const delayed = await runtime.run(() => Task.startNew(Later, { n: 1 }, { delay: 30 * 60_000 }));
      const runAt = (await delayed.get()).runAt.getTime();
      assert.ok(runAt - now >= 30 * 60_000 && runAt - now < 31 * 60_000, `run-at ${runAt - now} ms from now`);
      runtime.worker?.wake();
      await runtime.worker?.heartbeat();
      assert.equal((await delayed.get()).state, "queued");
      runtime.driver.clockShift(30 * 60_000 + 1_000);
      runtime.worker?.wake();
      await delayed.wait({ timeoutMs: 5_000 });

      await assert.rejects(
        runtime.run(() => Task.startNew(Later, { n: 2 }, { delay: 1_000, delayMs: 1_000 })),
        /options.delay and options.delayMs are the same setting \(ms from now\): give one of them, got delay 1000 and delayMs 1000/,
      );
      await assert.rejects(runtime.run(() => Task.startNew(Later, { n: 3 }, { delay: -5 })), /options.delay must be a number of ms >= 0, got -5/);
      await assert.rejects(runtime.run(() => Task.startNew(Later, { n: 4 }, { delay: Number.NaN })), /options.delay must be a number of ms >= 0, got NaN/);
      await assert.rejects(
        runtime.run(() => Task.continueWith(delayed, Later, { n: 5 }, { delay: 1_000 })),
        /Task.continueWith: a continuation starts when its predecessors end; runAt, delayMs and delay do not apply/,
      );
      await assert.rejects(
        runtime.run(() => Task.continueWith(delayed, Later, { n: 6 }, { dedupKey: "held-by-another" })),
        /Task.continueWith: a continuation cannot take a dedupKey/,
      );
      assert.equal((await runtime.listTasks()).items.length, 1, "nothing was stored by the refused starts");
    });

    it("deletes succeeded tasks after their retention and dead ones after the longer one", async () => {
      const runtime = await runtimeOn(newStore(store), {
        tasks: [Later, Breaks],
        maintenance: { retention: { succeededMs: HOUR, failedMs: DAY } },
      });
      const ok = await runtime.run(() => Task.startNew(Later, { n: 1 }));
      const bad = await runtime.run(() => Task.startNew(Breaks, { n: 1 }));
      await ok.wait({ timeoutMs: 5_000 });
      await assert.rejects(bad.wait({ timeoutMs: 5_000 }), /broken/);
      const young = await runtime.run(() => Task.startNew(Later, { n: 2 }, { delayMs: 2 * HOUR }));
      assert.equal(await runtime.cleaner?.runOnce(), 0);
      runtime.driver.clockShift(HOUR + 1_000);
      assert.equal(await runtime.cleaner?.runOnce(), 1);
      assert.equal(await runtime.findTask(ok.id), null);
      assert.equal((await runtime.getTask(bad.id)).state, "dead");
      runtime.driver.clockShift(DAY);
      assert.equal(await runtime.cleaner?.runOnce(), 1);
      assert.equal(await runtime.findTask(bad.id), null);
      assert.ok(await runtime.findTask(young.id)); // never ended: never deleted
    });
  });
}

describe("retention reads ended tasks by age through an index", () => {
  it("on SQLite", async () => {
    const open = newStore("sqlite");
    const driver = open();
    await driver.migrate();
    const plan = (await driver.sqlQuery(`EXPLAIN QUERY PLAN ${SQLITE_RETENTION_SELECT}`, [0, 0, 0, 0, 10])).rows.map((r) => String(r.detail));
    await driver.close();
    assert.ok(driver instanceof SqliteDriver);
    const searches = plan.filter((d) => /underway_tasks/.test(d));
    assert.equal(searches.length, 3, plan.join("\n"));
    for (const d of searches) assert.match(d, /SEARCH underway_tasks USING (COVERING )?INDEX underway_tasks_finished \(state=\? AND finished_at<\?\)/);
  });

  it("on PostgreSQL", async () => {
    const open = newStore("postgres");
    const driver = open();
    await driver.migrate();
    const schema = driver.schema as string;
    await driver.close();
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      // An empty table favours a sequential scan; without that choice, the plan shows the index serves the query.
      await client.query("SET enable_seqscan = off");
      const sql = queriesFor(`"${schema}"`).deleteFinished;
      const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, [0, HOUR, DAY, 1000]);
      const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
      assert.equal(plan.match(/underway_tasks_finished/g)?.length, 3, plan);
    } finally {
      await client.end();
    }
  });
});

describe("retention settings", () => {
  it("refuses ages and intervals that are not whole ms, naming the setting", async () => {
    await assert.rejects(
      runtimeOn(newStore("sqlite"), { maintenance: { retention: { succeededMs: -1 } } }),
      /maintenance.retention.succeededMs must be a whole number of ms from 0 to 3155760000000 \(100 years\), got -1/,
    );
    // PostgreSQL cannot subtract such an age from now: every pass would fail, and nothing be deleted.
    await assert.rejects(
      runtimeOn(newStore("sqlite"), { maintenance: { retention: { failedMs: Number.MAX_SAFE_INTEGER } } }),
      /maintenance.retention.failedMs must be a whole number of ms from 0 to 3155760000000 \(100 years\)/,
    );
    await assert.rejects(
      runtimeOn(newStore("sqlite"), { maintenance: { retention: { intervalMs: 0.5 } } }),
      /maintenance.retention.intervalMs must be a whole number of ms >= 1, got 0.5/,
    );
    // Node fires a timer above 2^31-1 ms at once: the duty would run every millisecond.
    await assert.rejects(
      runtimeOn(newStore("sqlite"), { maintenance: { retention: { intervalMs: 30 * 24 * 60 * 60 * 1000 } } }),
      /maintenance.retention.intervalMs must be at most 2147483647 ms/,
    );
  });

  it("refuses maintenance periods no timer can wait, naming the setting", async () => {
    for (const [maintenance, message] of [
      [{ rescueIntervalMs: 30 * 24 * 60 * 60 * 1000 }, /maintenance.rescueIntervalMs must be at most 2147483647 ms/],
      [{ rescueIntervalMs: -5 }, /maintenance.rescueIntervalMs must be a whole number of ms >= 1, got -5/],
      [{ leaderTermMs: -1000 }, /maintenance.leaderTermMs must be a whole number of ms >= 3, got -1000/],
      [{ leaderTermMs: 1 }, /maintenance.leaderTermMs must be a whole number of ms >= 3, got 1/],
      [{ scheduleIntervalMs: 0.5 }, /maintenance.scheduleIntervalMs must be a whole number of ms >= 1/],
      [{ missedAfterMs: -1 }, /maintenance.missedAfterMs must be a whole number of ms from 0 to/],
      [{ retention: "7d" }, /maintenance.retention must be an object or false, got "7d"/],
    ] as const) {
      await assert.rejects(runtimeOn(newStore("sqlite"), { maintenance: maintenance as never }), message, JSON.stringify(maintenance));
    }
  });

  it("warns at start when healthy ticks, or ticks during a leader change, would count as missed", async () => {
    for (const [maintenance, warning] of [
      [{ scheduleIntervalMs: 5_000, missedAfterMs: 2_000 }, /missedAfterMs is shorter than maintenance.scheduleIntervalMs/],
      // The default term is 15 s, tried for every 5 s: a dead leader's successor fires a tick up to 21 s late.
      [{ scheduleIntervalMs: 1_000, missedAfterMs: 10_000 }, /missedAfterMs is shorter than a leader change may take/],
      [{ scheduleIntervalMs: 1_000, leaderTermMs: 90_000 }, /missedAfterMs is shorter than a leader change may take/],
      [{ scheduleIntervalMs: 1_000 }, null],
      // 30 s + 10 s + 1 s: a term alone (31 s) is not enough.
      [{ scheduleIntervalMs: 1_000, leaderTermMs: 30_000, missedAfterMs: 31_000 }, /missedAfterMs is shorter than a leader change may take/],
      [{ scheduleIntervalMs: 1_000, leaderTermMs: 30_000, missedAfterMs: 41_000 }, null],
    ] as const) {
      const warnings: string[] = [];
      const at = (): void => undefined;
      const logger: Logger = { debug: at, info: at, error: at, warn: (_: object | string, m?: string) => void warnings.push(m ?? ""), child: () => logger };
      const runtime = await runtimeOn(newStore("sqlite"), { worker: false, logger, maintenance });
      await runtime.stop();
      const about = warnings.filter((w) => /missedAfterMs/.test(w));
      if (warning) assert.match(about.join("\n"), warning, JSON.stringify(maintenance));
      else assert.deepEqual(about, [], JSON.stringify(maintenance));
      assert.ok(about.length <= 1, about.join("\n"));
    }
  });
});
