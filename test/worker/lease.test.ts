import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { Task, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
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
