import assert from "node:assert/strict";
import { it } from "node:test";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { gate, startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();

it("holds tasks ahead of its slots: min(concurrency, 100) at first, one more per short run, up to prefetch", async () => {
  const first = gate();
  const later = gate();
  const started: number[] = [];
  class Held implements IBackgroundTask<{ n: number }> {
    async run({ n }: { n: number }): Promise<void> {
      started.push(n);
      // The first two hold their slots while the test looks; 2-29 are short; 30 on hold again.
      if (n < 2) await first.promise;
      else if (n >= 30) await later.promise;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Held], worker: { concurrency: 2, prefetch: 12, leaseMs: 30_000 } });
  const claimed = async (): Promise<number> => (await runtime.countTasks()).running ?? 0;
  await runtime.run(() => Task.startNewMany(Held, Array.from({ length: 60 }, (_, n) => ({ n }))));

  // Slots full with 0 and 1: two claimed ahead (the starting depth, min(concurrency, 100)), no more.
  await until(() => runtime.worker?.activeCount === 2, "the first two runs");
  assert.equal(await claimed(), 4);
  assert.deepEqual(started, [0, 1]);

  // 28 short runs later the depth is at its most, 12: two running, and more than half of twelve
  // held ahead (the worker claims again once those held are down to half the depth), never more.
  first.open();
  await until(() => started.includes(31), "the short runs to pass");
  await until(async () => (await claimed()) > 2 + 6, "the worker to hold more than six ahead");
  assert.equal(runtime.worker?.activeCount, 2);
  const held = (await claimed()) - 2;
  assert.ok(held > 6 && held <= 12, `${held} held ahead`);
  assert.equal(started.filter((n) => n >= 30).length, 2);

  later.open();
  await until(async () => (await runtime.countTasks()).succeeded === 60, "every task to succeed");
  assert.deepEqual(
    [...started].sort((a, b) => a - b),
    Array.from({ length: 60 }, (_, n) => n),
  );
});

it("holds none ahead with prefetch 0", async () => {
  const hold = gate();
  class Waits implements IBackgroundTask<null> {
    async run(): Promise<void> {
      await hold.promise;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Waits], worker: { concurrency: 3, prefetch: 0 } });
  await runtime.run(() => Task.startNewMany(Waits, [null, null, null, null, null]));
  await until(() => runtime.worker?.activeCount === 3, "three runs");
  assert.equal((await runtime.countTasks()).running, 3);
  hold.open();
  await until(async () => (await runtime.countTasks()).succeeded === 5, "every task to succeed");
});

it("claims no more while the store is behind with outcomes, and catches up", async () => {
  const writes = gate();
  let started = 0;
  class Quick implements IBackgroundTask<null> {
    run(): void {
      started++;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Quick], worker: { concurrency: 2, prefetch: 0, batchSize: 2 } });
  // The store takes its time with outcomes: every write waits for the test.
  const driver = runtime.driver;
  const complete = driver.taskCompleteMany.bind(driver);
  driver.taskCompleteMany = async (outcomes) => {
    await writes.promise;
    return complete(outcomes);
  };
  await runtime.run(() => Task.startNewMany(Quick, Array.from({ length: 40 }, () => null)));
  await until(() => started >= 4, "the first runs");
  // Two claims' worth of outcomes (2 x batchSize) wait to be stored: no claim until they are.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(started, 4);
  assert.equal((await runtime.countTasks()).succeeded ?? 0, 0);
  writes.open();
  await until(async () => (await runtime.countTasks()).succeeded === 40, "every outcome to be stored");
  assert.equal(started, 40);
});

it("holds hundreds of short tasks ahead by default, even at concurrency 1", async () => {
  const hold = gate();
  const started: number[] = [];
  class Tiny implements IBackgroundTask<{ n: number }> {
    async run({ n }: { n: number }): Promise<void> {
      started.push(n);
      if (n === 150) await hold.promise;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Tiny], worker: { concurrency: 1, leaseMs: 30_000 } });
  await runtime.run(() => Task.startNewMany(Tiny, Array.from({ length: 260 }, (_, n) => ({ n }))));
  // 150 short runs: the depth has grown past 150, so more than 75 are held behind the one that
  // waits (the worker claims again once those held are down to half the depth).
  await until(() => started.includes(150), "the run that waits");
  await until(async () => (await runtime.countTasks()).running > 1 + 75, "the worker to hold more than 75 ahead");
  assert.equal(runtime.worker?.activeCount, 1);
  hold.open();
  await until(async () => (await runtime.countTasks()).succeeded === 260, "every task to succeed");
});

it("holds no more tasks ahead than its slots run in half the hold at the recent pace", async () => {
  const hold = gate();
  let runs = 0;
  class Steady implements IBackgroundTask<{ n: number }> {
    async run({ n }: { n: number }): Promise<void> {
      runs++;
      // 30 ms of work (wall clock: short, under 50 ms), then one that waits for the test.
      if (n === 48) return hold.promise;
      const end = performance.now() + 30;
      while (performance.now() < end);
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Steady], worker: { concurrency: 1, leaseMs: 30_000 } });
  await runtime.run(() => Task.startNewMany(Steady, Array.from({ length: 100 }, (_, n) => ({ n }))));
  await until(() => runs === 49, "48 runs of 30 ms", 10_000);
  // At 30 ms a run, half a second's worth is 16 tasks (the worker claims again at half of that).
  // The depth alone (1 + 48 short runs) would hold 24 to 49.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  const held = ((await runtime.countTasks()).running ?? 0) - 1;
  assert.ok(held >= 5 && held <= 18, `held ${held} ahead`);
  hold.open();
  await until(async () => (await runtime.countTasks()).succeeded === 100, "every task to succeed", 10_000);
});

it("holds nothing ahead again while every slot holds a long run: handed back, the tasks stay free for other workers", async () => {
  const hold = gate();
  class Long implements IBackgroundTask<null> {
    async run(): Promise<void> {
      await hold.promise;
    }
  }
  // A lease of 300 ms holds tasks ahead for 100 ms (a third of it).
  const runtime = await startRuntime({ dir, tasks: [Long], worker: { concurrency: 2, leaseMs: 300 } });
  const released: string[] = [];
  runtime.on("taskReleased", (e) => released.push(e.taskId));
  let claimedAfterRelease = 0;
  const claim = runtime.driver.taskClaim.bind(runtime.driver);
  runtime.driver.taskClaim = async (params) => {
    const claimed = await claim(params);
    if (released.length > 0) claimedAfterRelease += claimed.length;
    return claimed;
  };
  await runtime.run(() => Task.startNewMany(Long, [null, null, null, null, null, null]));
  await until(() => runtime.worker?.activeCount === 2, "two long runs");
  // A new worker knows no run times yet: two held ahead, as at any start.
  assert.equal((await runtime.countTasks()).running, 4);

  // Their hold ends with both slots still taken by runs longer than a short one: handed back.
  await until(() => released.length === 2, "the two held ahead to be handed back");
  runtime.worker?.wake();
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(claimedAfterRelease, 0, "claimed again after handing them back");
  assert.deepEqual(await runtime.countTasks(), { queued: 4, running: 2, succeeded: 0, failed: 0, dead: 0, canceled: 0 });

  hold.open();
  await until(async () => (await runtime.countTasks()).succeeded === 6, "every task to succeed");
});
