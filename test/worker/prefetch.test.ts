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

  // 28 short runs later the depth is at its most, 12: two running, twelve held ahead.
  first.open();
  await until(() => started.includes(31), "the short runs to pass");
  await until(async () => (await claimed()) === 14, "the worker to hold twelve ahead");
  assert.equal(runtime.worker?.activeCount, 2);
  assert.equal(await claimed(), 14);
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
  // 150 short runs: the depth has grown past 150, so the 109 after the one that waits are all held.
  await until(() => started.includes(150), "the run that waits");
  await until(async () => (await runtime.countTasks()).running === 110, "the worker to hold the rest ahead");
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
