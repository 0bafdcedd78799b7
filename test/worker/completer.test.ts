/**
 * The completer writes outcomes in batches, waiting a millisecond for more while they keep coming;
 * a batch that has reached `eagerAt` (a claim's worth: the worker claims no more while twice that
 * is not stored) is written without that wait. Timers and the clock are mocked: the writes are
 * always recent, and a wait that was not skipped never ends by itself.
 */
import assert from "node:assert/strict";
import { after, it, mock } from "node:test";
import { Completer } from "../../src/worker/completer.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import type { RunOutcome, StorageDriver } from "../../src/store/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { tempDb, tempDir } from "../helpers.ts";

/** Turns of the event loop until `fn` holds (timers are mocked: setImmediate only). */
async function settle(fn: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (fn()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

it("writes a batch of eagerAt outcomes without waiting for more, and waits below it", async () => {
  const driver = new SqliteDriver({ path: tempDb(tempDir()), watch: false });
  after(() => driver.close());
  await driver.migrate();
  await driver.taskInsertMany(Array.from({ length: 8 }, () => task()));
  const claimed = await driver.taskClaim({ workerId: "w", leaseMs: 60_000, limit: 8 });
  const outcomes: RunOutcome[] = claimed.map((t) => ({ kind: "succeeded", id: t.id, runSeq: t.runSeq }));
  const written: string[][] = [];
  const completer = new Completer(
    driver,
    (batch) => written.push(batch.map((o) => o.id)),
    (error) => assert.fail(String(error)),
    3,
  );
  mock.timers.enable({ apis: ["setTimeout"] });
  after(() => mock.timers.reset());
  mock.method(performance, "now", () => 1_000);
  after(() => mock.restoreAll());

  // Nothing written lately: written on the next turn.
  completer.add(outcomes[0]!);
  await settle(() => written.length === 1, "the first write");
  // Right after a write, two outcomes wait for more (the timer never fires: mocked).
  completer.add(outcomes[1]!);
  completer.add(outcomes[2]!);
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(written.length, 1, "two outcomes right after a write wait for more");
  // The third makes a batch of eagerAt: written without the wait.
  completer.add(outcomes[3]!);
  await settle(() => written.length === 2, "the batch of three to be written without the timer");
  assert.deepEqual(written[1], [outcomes[1]!.id, outcomes[2]!.id, outcomes[3]!.id]);
  // Below eagerAt again, the wait ends with its timer.
  completer.add(outcomes[4]!);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(written.length, 2);
  mock.timers.tick(1);
  await settle(() => written.length === 3, "the timer's write");
  assert.deepEqual(written[2], [outcomes[4]!.id]);
  assert.equal((await driver.taskCountByState()).succeeded, 5);
});

it("an outcome the store refuses is written alone and behind the others, which are stored", async () => {
  const driver = new SqliteDriver({ path: tempDb(tempDir()), watch: false });
  after(() => driver.close());
  await driver.migrate();
  await driver.taskInsertMany(Array.from({ length: 6 }, () => task()));
  const claimed = await driver.taskClaim({ workerId: "w", leaseMs: 60_000, limit: 6 });
  const outcomes: RunOutcome[] = claimed.map((t) => ({ kind: "succeeded", id: t.id, runSeq: t.runSeq }));
  const poison = outcomes[2]!.id;
  const tried: string[][] = [];
  // A store that refuses any write holding the poison outcome (as one holding a value no column takes).
  const refusing = {
    taskCompleteMany: (batch: readonly RunOutcome[]) => {
      tried.push(batch.map((o) => o.id));
      return batch.some((o) => o.id === poison) ? Promise.reject(new Error("refused")) : driver.taskCompleteMany(batch);
    },
  } as unknown as StorageDriver;
  const written: string[] = [];
  const errors: string[] = [];
  const completer = new Completer(
    refusing,
    (batch) => written.push(...batch.map((o) => o.id)),
    (error) => errors.push(String(error)),
  );
  mock.timers.enable({ apis: ["setTimeout"] });
  after(() => mock.timers.reset());

  for (const o of outcomes) completer.add(o);
  for (let wait = 0; wait < 50 && written.length < 5; wait++) {
    await new Promise((resolve) => setImmediate(resolve));
    mock.timers.tick(500); // the pause after a failed write
  }
  assert.deepEqual(
    [...written].sort(),
    outcomes.filter((o) => o.id !== poison).map((o) => o.id).sort(),
    `every other outcome is stored (writes tried: ${JSON.stringify(tried)})`,
  );
  assert.equal((await driver.taskCountByState()).succeeded, 5);
  assert.ok(errors.length >= 1);
  // The refused one is still waiting (or being tried again), alone.
  assert.equal(completer.backlog, 1);
  assert.ok(tried.some((batch) => batch.length === 1 && batch[0] === poison), "the refused outcome was tried alone");
});
