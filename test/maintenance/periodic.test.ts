/** A maintenance duty: no pass begins once it is stopped, whoever nudges it; a long pass lets the event loop run. */
import assert from "node:assert/strict";
import { it, mock } from "node:test";
import { Cleaner } from "../../src/maintenance/cleaner.ts";
import { PeriodicDuty } from "../../src/maintenance/periodic.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import type { Logger } from "../../src/tasks/logger.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { tempDb, tempDir } from "../helpers.ts";

class CountingDuty extends PeriodicDuty<void> {
  passes = 0;
  constructor() {
    super({ logger: createLogger(false), intervalMs: 60_000, failure: "failed", name: "counting" });
  }
  runOnce(): Promise<void> {
    this.passes++;
    return Promise.resolve();
  }
}

it("runs a pass when nudged, none after it stopped (an election won during the stop), and again once restarted", async () => {
  const duty = new CountingDuty();
  duty.start();
  duty.nudge();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 1);
  await duty.stop();
  duty.nudge();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 1, "a pass ran after stop");
  duty.start(true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 2);
  await duty.stop();
});

it("lets the event loop run between a pass's batches on SQLite, and ends the pass at a stop", async () => {
  const driver = new SqliteDriver({ path: tempDb(tempDir()) });
  await driver.migrate();
  try {
    const task = { name: "Old", queue: "default", priority: 0, parameters: new Uint8Array([0xc0]), maxAttempts: 1, timeoutMs: 0, initiator: null, withUserConnection: false };
    await driver.taskInsertMany(Array.from({ length: 3_500 }, () => task));
    // Ended long ago: backdated rather than waited for.
    await driver.sqlQuery("UPDATE underway_tasks SET state = 'succeeded', finished_at = 0", []);
    const cleaner = new Cleaner({ driver, logger: createLogger(false), succeededMs: 0 });
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const before = turns;
    assert.equal(await cleaner.runOnce(), 3_500);
    ticking = false;
    assert.ok(turns - before >= 3, `the event loop turned ${turns - before} times during a pass of 4 batches`);

    // Stopped during a pass: it ends after the batch under way.
    await driver.taskInsertMany(Array.from({ length: 3_500 }, () => task));
    await driver.sqlQuery("UPDATE underway_tasks SET state = 'succeeded', finished_at = 0", []);
    cleaner.start(true);
    await cleaner.stop();
    const left = (await driver.sqlQuery("SELECT count(*) AS n FROM underway_tasks", [])).rows[0]?.n;
    assert.equal(left, 2_500, "one batch of 1,000 deleted, then the pass ended");
  } finally {
    await driver.close();
  }
});

it("says once when a pass has run for a minute, since no other pass begins until it ends", async () => {
  mock.timers.enable({ apis: ["setInterval", "Date"], now: 1_000_000 });
  const warnings: { fields: object; message: string }[] = [];
  const at = (): void => undefined;
  const logger: Logger = { debug: at, info: at, error: at, warn: (fields: object | string, message?: string) => void warnings.push({ fields: Object(fields) as object, message: message ?? "" }), child: () => logger };
  /** A pass the store never answers: a lock held elsewhere, a connection cut without a reset. */
  class StuckDuty extends PeriodicDuty<void> {
    passes = 0;
    constructor() {
      super({ logger, intervalMs: 5_000, failure: "failed", name: "rescue" });
    }
    runOnce(): Promise<void> {
      this.passes++;
      return new Promise<void>(() => undefined);
    }
  }
  const duty = new StuckDuty();
  try {
    duty.start(true);
    mock.timers.tick(55_000);
    assert.equal(warnings.length, 0, "reported before a minute");
    mock.timers.tick(5_000);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.message ?? "", /the rescue pass has run for 60 s and none begins until it ends: is the store answering\?/);
    assert.deepEqual(warnings[0]?.fields, { duty: "rescue", runningMs: 60_000 });
    mock.timers.tick(120_000);
    assert.equal(warnings.length, 1, "reported again for the same pass");
    assert.equal(duty.passes, 1);
  } finally {
    mock.timers.reset();
    void duty.stop();
  }
});
