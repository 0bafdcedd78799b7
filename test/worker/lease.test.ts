import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { LeaseLostError, Task, type IBackgroundTask, type TaskContext, type WorkerEvent } from "../../src/index.ts";
import { MarkTask } from "../fixtures/tasks.ts";
import { gate, startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();

it("a run that lost its lease is aborted and its result discarded; the new run's result stands", async () => {
  const file = join(dir, "lease.txt");
  const runtime = await startRuntime({
    dir,
    tasks: [MarkTask],
    worker: { leaseMs: 10_000, heartbeatMs: 9_999 },
    maintenance: { rescueIntervalMs: 3_600_000 },
  });
  const aborted: unknown[] = [];
  const handle = await runtime.run(() => Task.startNew(MarkTask, { file, hangUntilAttempt: 1 }));
  await until(() => existsSync(file) && readFileSync(file, "utf8").includes("attempt:1"), "attempt 1 to start");

  // The worker looks dead to the store: its lease passes without a heartbeat.
  runtime.driver.clockShift(10_001);
  assert.deepEqual(await runtime.rescuer?.runOnce(), { retried: 1, dead: 0 });
  const done = await handle.wait({ timeoutMs: 5_000 });
  assert.equal(done.attempt, 2);
  assert.equal(runtime.worker?.activeCount, 1); // attempt 1 still hangs in this process

  runtime.on("taskFailed", (e) => aborted.push(e));
  await runtime.worker?.heartbeat();
  await until(() => runtime.worker?.activeCount === 0, "the lost run to end");
  const after = await handle.get();
  assert.equal(after.state, "succeeded");
  assert.deepEqual(
    after.errors.map((e) => e.name),
    ["LeaseExpiredError"],
  );
  assert.deepEqual(aborted, []); // the lost run's failure was never recorded
});

it("stops a run whose lease the store does not confirm before it runs out; the task runs again after the lease", async () => {
  const stops: unknown[] = [];
  class Long implements IBackgroundTask<null, string> {
    static attempts = 0;
    async run(_p: null, context: TaskContext): Promise<string> {
      if (++Long.attempts > 1) return "second";
      await new Promise<void>((resolve) => {
        context.signal.addEventListener("abort", () => {
          stops.push(context.signal.reason);
          resolve();
        });
      });
      return "first";
    }
  }
  const runtime = await startRuntime({
    dir,
    tasks: [Long],
    worker: { leaseMs: 300, heartbeatMs: 100 },
    maintenance: { rescueIntervalMs: 3_600_000 },
  });
  const events: WorkerEvent[] = [];
  runtime.on("taskDiscarded", (e) => events.push(e));
  const driver = runtime.driver;
  const renew = driver.taskHeartbeat.bind(driver);
  let failing = false;
  let failedRenewals = 0;
  driver.taskHeartbeat = async (params) => {
    if (!failing) return renew(params);
    failedRenewals++;
    throw new Error("the store does not answer");
  };
  const handle = await runtime.run(() => Task.startNew(Long, null));
  await until(() => Long.attempts === 1, "the first attempt to start");
  failing = true;
  // Renewals fail from now on: the run is stopped before its lease (300 ms) runs out.
  await until(() => stops.length === 1, "the run to be stopped");
  assert.ok(stops[0] instanceof LeaseLostError);
  assert.match((stops[0] as Error).message, /could not be renewed before it ran out/);
  assert.ok(failedRenewals >= 1 && failedRenewals <= 2, `stopped after ${failedRenewals} failed renewals`);
  await until(() => events.length === 1, "the discarded run to be reported");
  assert.equal((events[0] as { reason?: string }).reason, "lease lost");
  assert.equal(runtime.worker?.activeCount, 0);
  // Its result was not stored: the task is still the first run's, until its lease runs out.
  assert.equal((await handle.get()).state, "running");

  failing = false;
  runtime.driver.clockShift(301);
  assert.deepEqual(await runtime.rescuer?.runOnce(), { retried: 1, dead: 0 });
  const done = await handle.wait({ timeoutMs: 5_000 });
  assert.equal(done.state, "succeeded");
  assert.equal(done.attempt, 2);
  assert.equal(await handle.result(), "second");
});

it("does not stop runs whose heartbeat is close to the lease while renewals succeed", async () => {
  let ended = 0;
  const proceed = gate();
  class Waits implements IBackgroundTask<null> {
    async run(_p: null, context: TaskContext): Promise<void> {
      await Promise.race([proceed.promise, new Promise((r) => context.signal.addEventListener("abort", r))]);
      ended++;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Waits], worker: { leaseMs: 400, heartbeatMs: 300 } });
  const discarded: WorkerEvent[] = [];
  runtime.on("taskDiscarded", (e) => discarded.push(e));
  const handle = await runtime.run(() => Task.startNew(Waits, null));
  let renewals = 0;
  const renew = runtime.driver.taskHeartbeat.bind(runtime.driver);
  runtime.driver.taskHeartbeat = async (params) => {
    renewals++;
    return renew(params);
  };
  await until(() => renewals >= 4, "four renewals");
  assert.equal(ended, 0);
  proceed.open();
  assert.equal((await handle.wait({ timeoutMs: 5_000 })).state, "succeeded");
  assert.deepEqual(discarded, []);
});

it("stores the last progress a run reported just before it ended", async () => {
  class Steps implements IBackgroundTask<null> {
    run(_p: null, context: TaskContext): void {
      for (let step = 1; step <= 9; step++) context.reportProgress(step / 10, `step ${step}`);
      context.reportProgress(1, "done");
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Steps] });
  const handle = await runtime.run(() => Task.startNew(Steps, null));
  assert.equal((await handle.wait({ timeoutMs: 5_000 })).state, "succeeded");
  const done = await until(async () => {
    const t = await handle.get();
    return t.progressMessage === "done" ? t : null;
  }, "the last progress to be stored", 2_000);
  assert.equal(done.progress, 1);
});

it("stores progress reported by a running task", async () => {
  const proceed = gate();
  class Progressing implements IBackgroundTask<null> {
    async run(_p: null, context: TaskContext): Promise<void> {
      context.reportProgress(0.25, "a quarter");
      context.reportProgress(0.5, "half");
      await proceed.promise;
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Progressing] });
  const handle = await runtime.run(() => Task.startNew(Progressing, null));
  const seen = await until(async () => {
    const t = await handle.get();
    return t.progress === 0.5 ? t : null;
  }, "progress to be stored");
  assert.equal(seen.progressMessage, "half");
  proceed.open();
  assert.equal((await handle.wait({ timeoutMs: 5_000 })).state, "succeeded");
});

it("keeps the lease of a run that ended while the store refuses its outcome: the task does not run again", async () => {
  class Once implements IBackgroundTask<null, string> {
    static runs = 0;
    run(): string {
      Once.runs++;
      return "done";
    }
  }
  const runtime = await startRuntime({
    dir,
    tasks: [Once],
    // The timer's heartbeat never comes during the test: the test beats by hand.
    worker: { leaseMs: 10_000, heartbeatMs: 9_999 },
    maintenance: { rescueIntervalMs: 3_600_000 },
  });
  const driver = runtime.driver;
  const complete = driver.taskCompleteMany.bind(driver);
  let refusing = true;
  let refused = 0;
  driver.taskCompleteMany = async (outcomes) => {
    if (!refusing) return complete(outcomes);
    refused++;
    throw new Error("the store refuses the write");
  };
  const handle = await runtime.run(() => Task.startNew(Once, null));
  await until(() => Once.runs === 1 && refused >= 1, "the run to end and its outcome to be refused");
  assert.equal(runtime.worker?.activeCount, 0);

  // Most of a lease later the worker beats; once more as long later, the first lease would have
  // run out: the renewed one has not, so the rescuer leaves the task to this worker.
  driver.clockShift(6_000);
  await runtime.worker?.heartbeat();
  driver.clockShift(6_000);
  assert.deepEqual(await runtime.rescuer?.runOnce(), { retried: 0, dead: 0 });
  assert.equal((await handle.get()).state, "running");

  refusing = false;
  const done = await handle.wait({ timeoutMs: 5_000 });
  assert.equal(done.state, "succeeded");
  assert.equal(done.attempt, 1);
  assert.equal(await handle.result(), "done");
  assert.equal(Once.runs, 1);
});
