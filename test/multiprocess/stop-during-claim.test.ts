/**
 * A worker told to stop (SIGTERM on `underway worker`, or runtime.stop()) while a claim is on the
 * wire. The claim commits in the store, so its tasks are running in this worker's name; stop()
 * must not return and leave them so (they would wait out their lease, and lose an attempt, before
 * another process could run them). Here the claim's answer is held back until stop() has
 * resolved, which makes the race deterministic.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { createRuntime, Task, type IBackgroundTask } from "../../src/index.ts";
import type { ClaimedTask, TaskClaimParams } from "../../src/store/driver.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { startRuntime, TEST_POSTGRES_URL, tempSchema, until } from "../helpers.ts";
import { storeUrl } from "./helpers.ts";

const schema = tempSchema();

class Noop implements IBackgroundTask<null> {
  run(): void {}
}

/** The PostgreSQL driver, but the answers of claims that got tasks wait until `release()`. */
class HeldClaimsDriver extends PostgresDriver {
  holding = false;
  claimedWhileHeld = 0;
  closeCalled = false;
  release: () => void = () => undefined;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));
  override async taskClaim(params: TaskClaimParams): Promise<ClaimedTask[]> {
    const tasks = await super.taskClaim(params);
    if (tasks.length > 0 && this.holding) {
      this.claimedWhileHeld += tasks.length;
      await this.released;
    }
    return tasks;
  }
  override close(): Promise<void> {
    this.closeCalled = true;
    return super.close();
  }
}

it("stop() while a claim is in flight leaves no task claimed in the stopped worker's name", { timeout: 60_000 }, async () => {
  const driver = new HeldClaimsDriver({ connectionString: TEST_POSTGRES_URL, schema });
  const runtime = createRuntime({ db: driver, tasks: [Noop], worker: { pollIntervalMs: 600_000 }, maintenance: false, logger: false, isolation: "none" });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const inspector = await startRuntime({ dir: "", db: storeUrl(schema), worker: false, maintenance: false });

  driver.holding = true;
  // Started by another runtime, so that this worker claims it (its own start would be handed to
  // it as the task is stored; see test/worker/hand-off.test.ts for a stop during that).
  const handle = await inspector.run(() => Task.startNew(Noop, null));
  await until(() => driver.claimedWhileHeld === 1, "the worker's claim to commit");
  assert.equal((await inspector.getTask(handle.id)).state, "running");

  const stopping = runtime.stop({ graceMs: 1_000 });
  // A stop() that waits for the claim gets its answer after a moment. One that closes the store
  // first never does: a task begun on a closed store would retry its outcome every 500 ms for
  // ever, keeping this process alive.
  const letThrough = setTimeout(() => {
    if (!driver.closeCalled) driver.release();
  }, 300);
  await stopping;
  clearTimeout(letThrough);
  const task = await inspector.getTask(handle.id);
  assert.deepEqual(
    { state: task.state, attempt: task.attempt, workerId: task.workerId },
    { state: "queued", attempt: 0, workerId: null },
    "the stopped worker's claim is handed back, as stop() does with the runs it interrupts",
  );
});
