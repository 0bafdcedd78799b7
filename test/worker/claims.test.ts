/**
 * When a worker claims: after a wake-up (a new task, a due time, the poll), and when a slot frees
 * while the store may still hold due tasks; not when its last claim found the store empty.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { Task, type IBackgroundTask, type Runtime } from "../../src/index.ts";
import type { ClaimedTask } from "../../src/store/driver.ts";
import { gate, startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();

/** Counts the worker's claims and the tasks they brought. */
function countClaims(runtime: Runtime): { claims: number; tasks: number } {
  const driver = runtime.driver;
  const counts = { claims: 0, tasks: 0 };
  const claim = driver.taskClaim.bind(driver);
  driver.taskClaim = async (params) => {
    counts.claims++;
    const tasks: ClaimedTask[] = await claim(params);
    counts.tasks += tasks.length;
    return tasks;
  };
  return counts;
}

const succeeded = (runtime: Runtime, id: string) =>
  until(async () => (await runtime.getTask(id)).state === "succeeded", `task ${id} to succeed`);

/** Lets the worker's pending turns and timers (a run's end, a write of outcomes) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

it("claims once for each task that arrives while it is idle, not again at the run's end and at its outcome's write", async () => {
  class Quick implements IBackgroundTask<{ n: number }> {
    run(): void {}
  }
  const runtime = await startRuntime({ dir, tasks: [Quick], worker: { concurrency: 4, pollIntervalMs: 60_000 } });
  await settle();
  const counts = countClaims(runtime);
  for (let n = 0; n < 5; n++) {
    // delayMs: 0 stores the task for the worker to claim (not handed over as it is stored).
    const handle = await runtime.run(() => Task.startNew(Quick, { n }, { delayMs: 0 }));
    await succeeded(runtime, handle.id);
    await settle();
  }
  assert.deepEqual(counts, { claims: 5, tasks: 5 });
});

it("claims when a slot frees while tasks it could not take are still due", async () => {
  const hold = gate();
  const ran: number[] = [];
  class Held implements IBackgroundTask<{ n: number }> {
    async run({ n }: { n: number }): Promise<void> {
      ran.push(n);
      if (n === 0) await hold.promise;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Held], worker: { concurrency: 1, prefetch: 0, pollIntervalMs: 60_000 } });
  await runtime.run(() => Task.startNewMany(Held, [{ n: 0 }, { n: 1 }, { n: 2 }]));
  await until(() => ran.length === 1, "the first run");
  await settle();
  assert.deepEqual(ran, [0]);
  hold.open();
  // No wake-up comes: the slots that free claim the rest.
  await until(async () => (await runtime.countTasks()).succeeded === 3, "every task to succeed");
  assert.deepEqual(ran, [0, 1, 2]);
});

it("retries a failed task at its due time with no other wake-up", async () => {
  let attempts = 0;
  class FailsOnce implements IBackgroundTask<null> {
    static readonly taskOptions = { maxAttempts: 2, backoff: { baseMs: 20, maxMs: 20, jitter: 0 } };
    run(): void {
      attempts++;
      if (attempts === 1) throw new Error("first attempt fails");
    }
  }
  const runtime = await startRuntime({ dir, tasks: [FailsOnce], worker: { concurrency: 2, pollIntervalMs: 60_000 } });
  const handle = await runtime.run(() => Task.startNew(FailsOnce, null, { delayMs: 0 }));
  await succeeded(runtime, handle.id);
  assert.equal(attempts, 2);
});
