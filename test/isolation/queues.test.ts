/**
 * Queues and fairness on both stores: priorities, a fair share per user, concurrency per queue,
 * rate limits per class, and deduplication keys under concurrent starts.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createRuntime, runAsUser, Task, type IBackgroundTask, type Runtime, type RuntimeConfig, type TaskContext } from "../../src/index.ts";
import { gate, TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";

const STORES = ["sqlite", "postgres"] as const;

/** Start order, shared by the classes below (they run on the worker's event loop here). */
const started: string[] = [];
let release = gate();

class Record implements IBackgroundTask<{ label: string }> {
  run(p: { label: string }): void {
    started.push(p.label);
  }
}

class Held implements IBackgroundTask<{ label: string }> {
  static readonly taskOptions = { queue: "slow" };
  async run(p: { label: string }): Promise<void> {
    started.push(p.label);
    await release.promise;
  }
}

class Limited implements IBackgroundTask<{ label: string }> {
  static readonly taskOptions = { rateLimit: { tasks: 3, intervalMs: 60_000 } };
  run(p: { label: string }): void {
    started.push(p.label);
  }
}

class Slow implements IBackgroundTask<{ label: string }> {
  async run(p: { label: string }, context: TaskContext): Promise<void> {
    started.push(p.label);
    await new Promise<void>((resolve) => context.signal.addEventListener("abort", () => resolve()));
  }
}

/**
 * PostgreSQL schemas are made at suite level, so they are dropped after the suite, once every
 * test's runtime has stopped (a test's own hooks run first in, first out: a schema made inside a
 * test would be dropped while the runtime still works in it).
 */
function storesFor(store: (typeof STORES)[number]): () => string {
  const schemas = store === "postgres" ? Array.from({ length: 8 }, () => tempSchema()) : [];
  return () => {
    if (store === "sqlite") return tempDb(tempDir());
    const schema = schemas.shift();
    if (!schema) throw new Error("more stores than the suite made schemas for");
    return `${TEST_POSTGRES_URL}?schema=${schema}`;
  };
}

async function open(db: string, extra: Partial<RuntimeConfig> = {}, clockShiftMs = 0): Promise<Runtime> {
  const runtime = createRuntime({ db, logger: false, isolation: "none", tasks: [Record, Held, Limited, Slow], ...extra });
  runtime.driver.clockShift(clockShiftMs);
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}

for (const store of STORES) {
  describe(`queues and fairness (${store})`, () => {
    const storeOf = storesFor(store);
    it("runs a due task of higher priority before lower ones", async () => {
      started.length = 0;
      const db = storeOf();
      const producer = await open(db, { worker: false });
      await producer.run(async () => {
        await Task.startNewMany(Record, [{ label: "low-1" }, { label: "low-2" }]);
        await Task.startNew(Record, { label: "high" }, { priority: 10 });
        await Task.startNew(Record, { label: "middle" }, { priority: 5 });
      });
      const worker = await open(db, { worker: { concurrency: 1 } });
      await until(() => started.length === 4, "all four to run");
      assert.deepEqual(started, ["high", "middle", "low-1", "low-2"]);
      await worker.stop();
    });

    it("gives each user a fair share: B's 10 tasks start among the first, not after A's 5,000", async () => {
      started.length = 0;
      const db = storeOf();
      const producer = await open(db, { worker: false });
      await producer.run(() =>
        runAsUser({ userId: "A" }, () => Task.startNewMany(Record, Array.from({ length: 5_000 }, (_, i) => ({ label: `A${i}` })))),
      );
      for (let i = 0; i < 10; i++) {
        await producer.run(() => runAsUser({ userId: "B" }, () => Task.startNew(Record, { label: `B${i}` })));
      }
      const worker = await open(db, { worker: { concurrency: 10, batchSize: 10 } });
      await until(() => started.filter((l) => l.startsWith("B")).length === 10, "B's tasks to run", 30_000);
      const lastB = Math.max(...started.map((l, i) => (l.startsWith("B") ? i : -1)));
      assert.ok(lastB < 30, `B's last task started at position ${lastB}, within the first three batches of 10`);
      await worker.stop({ graceMs: 0 });
    });

    it("runs at most the queue's concurrency of a capped queue, while other queues go on", async () => {
      started.length = 0;
      release = gate();
      const runtime = await open(storeOf(), { worker: { concurrency: 10, queueConcurrency: { slow: 2 } } });
      const held = await runtime.run(() => Task.startNewMany(Held, Array.from({ length: 6 }, (_, i) => ({ label: `held${i}` }))));
      await until(() => started.filter((l) => l.startsWith("held")).length === 2, "two of the slow queue to start");
      const others = await runtime.run(() => Task.startNewMany(Record, Array.from({ length: 5 }, (_, i) => ({ label: `other${i}` }))));
      for (const h of others) await h.wait({ timeoutMs: 10_000 });
      assert.equal(started.filter((l) => l.startsWith("held")).length, 2, "still two of the slow queue, with 8 slots free");
      assert.equal((await runtime.countTasks()).running, 2);
      release.open();
      for (const h of held) await h.wait({ timeoutMs: 10_000 });
      assert.equal(started.filter((l) => l.startsWith("held")).length, 6);
    });

    it("starts at most a class's rate limit per window, across workers; the next window starts more", async () => {
      started.length = 0;
      const db = storeOf();
      // Windows are fixed (aligned to the epoch): every runtime's clock moves to just after a
      // window's start, so the test never straddles a boundary the real clock happens to cross.
      const shift = 60_000 - (Date.now() % 60_000) + 100;
      const producer = await open(db, { worker: false }, shift);
      const handles = await producer.run(() => Task.startNewMany(Limited, Array.from({ length: 8 }, (_, i) => ({ label: `L${i}` }))));
      const a = await open(db, { worker: { concurrency: 5 }, maintenance: false }, shift);
      const b = await open(db, { worker: { concurrency: 5 }, maintenance: false }, shift);
      await until(async () => (await producer.countTasks()).succeeded === 3, "three to run");
      // The window allows no more, whoever asks.
      const probe = { workerId: "probe", leaseMs: 1_000, limit: 10, names: ["Limited"], rate: { limit: 3, intervalMs: 60_000 } };
      assert.deepEqual(await producer.driver.taskClaim(probe), []);
      assert.equal((await producer.countTasks()).succeeded, 3);
      assert.equal((await producer.countTasks()).queued, 5);
      // The next window: the database clock moves a minute on.
      for (const r of [producer, a, b]) r.driver.clockShift(60_000);
      a.worker?.wake();
      b.worker?.wake();
      await until(async () => (await producer.countTasks()).succeeded === 6, "three more in the next window");
      assert.equal((await producer.countTasks()).queued, 2);
      assert.equal(started.length, 6);
      assert.equal(handles.length, 8);
    });

    it("returns the existing task for a start with a held deduplication key, under concurrent starts", async () => {
      const db = storeOf();
      const one = await open(db, { worker: false });
      const two = await open(db, { worker: false });
      const starts = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? one : two).run(() => Task.startNew(Record, { label: `dup${i}` }, { dedupKey: "invoice:42" })),
        ),
      );
      assert.equal(new Set(starts.map((h) => h.id)).size, 1, "every start got the same task");
      const page = await one.listTasks({ name: "Record" });
      assert.equal(page.items.length, 1, "exactly one task is stored");
      // Another key is another task; and a start without a key is never deduplicated.
      const other = await one.run(() => Task.startNew(Record, { label: "other" }, { dedupKey: "invoice:43" }));
      assert.notEqual(other.id, starts[0]!.id);
      await assert.rejects(
        one.run(() => Task.startNewMany(Record, [{ label: "x" }, { label: "y" }], { dedupKey: "k" })),
        /dedupKey applies to one start/,
      );
      // Keys the stores could not hold alike are refused before anything is stored.
      for (const key of ["invoice\u0000 42", "invoice \ud800", "\udc00"]) {
        await assert.rejects(one.run(() => Task.startNew(Record, { label: "bad key" }, { dedupKey: key })), {
          name: "TaskStartError",
          message: /dedupKey must not hold a NUL character or a lone surrogate/,
        });
      }
      assert.equal((await one.listTasks({ name: "Record" })).items.length, 2);
    });

    it("holds a key until the task ends, or with dedupUntil started only until it starts", async () => {
      started.length = 0;
      const db = storeOf();
      const runtime = await open(db, { worker: { concurrency: 4 } });
      const first = await runtime.run(() => Task.startNew(Slow, { label: "ended-1" }, { dedupKey: "k-ended" }));
      await until(() => started.includes("ended-1"), "the first to start");
      const again = await runtime.run(() => Task.startNew(Slow, { label: "ended-2" }, { dedupKey: "k-ended" }));
      assert.equal(again.id, first.id, "held while running");

      const s1 = await runtime.run(() => Task.startNew(Slow, { label: "started-1" }, { dedupKey: "k-started", dedupUntil: "started" }));
      await until(() => started.includes("started-1"), "it to start");
      const s2 = await runtime.run(() => Task.startNew(Slow, { label: "started-2" }, { dedupKey: "k-started", dedupUntil: "started" }));
      assert.notEqual(s2.id, s1.id, "released when it started");

      // Once the first has ended, its key is free again.
      await runtime.cancelTask(first.id);
      const third = await runtime.run(() => Task.startNew(Slow, { label: "ended-3" }, { dedupKey: "k-ended" }));
      assert.notEqual(third.id, first.id);
      for (const id of [s1.id, s2.id, third.id]) await runtime.cancelTask(id);
    });
  });
}
