import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task, TaskCanceledError, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
import { startRuntime, tempDb, tempDir, until } from "../helpers.ts";

const dir = tempDir();
const root = join(import.meta.dirname, "..", "..");
let abortedWith: unknown = null;

class Waits implements IBackgroundTask<null> {
  static readonly taskOptions = { maxAttempts: 1 };
  async run(_p: null, context: TaskContext): Promise<void> {
    await new Promise<void>((_resolve, reject) =>
      context.signal.addEventListener("abort", () => {
        abortedWith = context.signal.reason;
        reject(context.signal.reason);
      }),
    );
  }
}

class Fails implements IBackgroundTask<null> {
  static readonly taskOptions = { maxAttempts: 1 };
  static calls = 0;
  run(): void {
    Fails.calls++;
    if (Fails.calls === 1) throw new Error("first time");
  }
}

describe("cancel, retry, delete, retention", () => {
  it("cancels a queued task (it never runs) and a running one (its signal aborts at once)", async () => {
    const runtime = await startRuntime({ dir, tasks: [Waits] });
    const later = await runtime.run(() => Task.startNew(Waits, null, { delayMs: 3_600_000 }));
    assert.equal(await runtime.cancelTask(later.id), true);
    assert.equal((await later.get()).state, "canceled");
    assert.equal(await runtime.cancelTask(later.id), false); // already ended

    const running = await runtime.run(() => Task.startNew(Waits, null));
    await until(() => runtime.worker?.activeCount === 1, "the task to run");
    assert.equal(await runtime.cancelTask(running.id), true);
    await until(() => abortedWith instanceof TaskCanceledError, "the run to be aborted");
    await until(() => runtime.worker?.activeCount === 0, "the run to end");
    const task = await running.get();
    assert.equal(task.state, "canceled");
    assert.deepEqual(task.errors, []); // the aborted run's failure was not recorded
  });

  it("learns at a heartbeat that another process canceled a run, aborts it as canceled, and lets go once it ended", async () => {
    const discarded: string[] = [];
    const runtime = await startRuntime({ dir, tasks: [Waits], worker: { heartbeatMs: 20, leaseMs: 60_000 } });
    runtime.on("taskDiscarded", (e) => discarded.push(e.reason));
    abortedWith = null;
    const handle = await runtime.run(() => Task.startNew(Waits, null));
    await until(() => runtime.worker?.activeCount === 1, "the task to run");
    // As another process cancels: through the store alone, this worker is not told.
    assert.equal(await runtime.driver.taskCancel({ id: handle.id }), "running");
    await until(() => abortedWith instanceof TaskCanceledError, "the run to be aborted as canceled");
    await until(async () => (await handle.get()).stopping === false, "the ended run to let go of its lease");
    assert.deepEqual(discarded, ["canceled"]);
    assert.equal(await runtime.retryTask(handle.id), true);
  });

  it("retries a dead task, and deletes ended ones", async () => {
    const runtime = await startRuntime({ dir, tasks: [Fails] });
    const handle = await runtime.run(() => Task.startNew(Fails, null));
    await assert.rejects(handle.wait({ timeoutMs: 5_000 }), /ended dead/);
    assert.equal(await runtime.retryTask(handle.id), true);
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.equal(done.attempt, 2);
    assert.equal(await runtime.retryTask(handle.id), false); // succeeded: nothing to retry
    assert.equal(await runtime.deleteTask(handle.id), true);
    assert.equal(await runtime.findTask(handle.id), null);
  });

  it("deletes ended tasks after their retention, on the maintenance leader", async () => {
    const runtime = await startRuntime({ dir, tasks: [Fails], maintenance: { retention: { succeededMs: 1_000, failedMs: 10_000 } } });
    Fails.calls = 1; // succeed from now on
    const ok = await runtime.run(() => Task.startNew(Fails, null));
    await ok.wait({ timeoutMs: 5_000 });
    assert.equal(await runtime.cleaner?.runOnce(), 0);
    runtime.driver.clockShift(1_001);
    assert.equal(await runtime.cleaner?.runOnce(), 1);
    assert.equal(await runtime.findTask(ok.id), null);
  });

  it("cancel and retry from the command line", async () => {
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, worker: false, tasks: [Waits] });
    const handle = await runtime.run(() => Task.startNew(Waits, null));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, "bin", "underway.mjs"), ...args, "--db", db], { cwd: root, encoding: "utf8", env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn" } });
    const canceled = cli("cancel", handle.id);
    assert.equal(canceled.status, 0, canceled.stderr);
    assert.match(canceled.stdout, new RegExp(`task ${handle.id} \\(Waits\\) canceled`));
    const again = cli("cancel", handle.id);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /cannot be canceled: it is canceled/);
    const retried = cli("retry", handle.id);
    assert.equal(retried.status, 0, retried.stderr);
    assert.equal((await handle.get()).state, "queued");
  });
});
