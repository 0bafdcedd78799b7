import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Task,
  TaskDeserializationError,
  TaskFailedError,
  UnrecoverableTaskError,
  type IBackgroundTask,
  type TaskContext,
} from "../../src/index.ts";
import { startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();
const attempts = new Map<string, number>();

/** Fails until its attempt reaches `succeedOn`. */
class Flaky implements IBackgroundTask<{ key: string; succeedOn: number }> {
  static readonly taskOptions = { maxAttempts: 3, backoff: { baseMs: 60_000, maxMs: 600_000, jitter: 0 } };
  run(p: { key: string; succeedOn: number }, context: TaskContext): void {
    attempts.set(p.key, context.attempt);
    if (context.attempt < p.succeedOn) throw new Error(`attempt ${context.attempt} of ${p.key} failed`);
  }
}

class GiveUp implements IBackgroundTask<null> {
  run(): void {
    throw new UnrecoverableTaskError("the customer no longer exists");
  }
}

class ThrowsString implements IBackgroundTask<null> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {
    throw "plain string";
  }
}

class Slow implements IBackgroundTask<null> {
  static readonly taskOptions = { timeoutMs: 30, maxAttempts: 1 };
  static abortedWith: unknown = null;
  async run(_p: null, context: TaskContext): Promise<void> {
    await new Promise<void>((resolve) =>
      context.signal.addEventListener("abort", () => {
        Slow.abortedWith = context.signal.reason;
        resolve();
      }),
    );
  }
}

describe("retries", () => {
  it("retries with exponential backoff decided by the database clock, then succeeds", async () => {
    const runtime = await startRuntime({ dir, tasks: [Flaky], worker: { pollIntervalMs: 10 } });
    const handle = await runtime.run(() => Task.startNew(Flaky, { key: "a", succeedOn: 3 }));

    const first = await until(async () => {
      const t = await handle.get();
      return t.state === "failed" ? t : null;
    }, "the first failure");
    assert.equal(first.attempt, 1);
    assert.equal(first.lastError?.message, "attempt 1 of a failed");
    // baseMs 60 s, no jitter: due one minute after the failure.
    const delay1 = first.runAt.getTime() - (first.lastError?.at.getTime() ?? 0);
    assert.equal(delay1, 60_000);

    // Nothing runs before the clock reaches run-at; moving the clock makes it due.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await handle.get()).attempt, 1);
    runtime.driver.clockShift(60_000);
    const second = await until(async () => {
      const t = await handle.get();
      return t.state === "failed" && t.attempt === 2 ? t : null;
    }, "the second failure");
    assert.equal(second.runAt.getTime() - (second.lastError?.at.getTime() ?? 0), 120_000);

    runtime.driver.clockShift(120_000);
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.equal(done.attempt, 3);
    assert.deepEqual(
      done.errors.map((e) => [e.attempt, e.message]),
      [
        [1, "attempt 1 of a failed"],
        [2, "attempt 2 of a failed"],
      ],
    );
    assert.ok(done.errors[0]?.stack?.includes("failures.test.ts"));
  });

  it("ends dead when the attempts are spent", async () => {
    const runtime = await startRuntime({ dir, tasks: [Flaky], worker: { pollIntervalMs: 10 } });
    const handle = await runtime.run(() => Task.startNew(Flaky, { key: "b", succeedOn: 99 }, { maxAttempts: 2 }));
    await until(async () => (await handle.get()).state === "failed", "first failure");
    runtime.driver.clockShift(60_000);
    const error = await handle.wait({ timeoutMs: 5_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof TaskFailedError);
    assert.equal(error.task.state, "dead");
    assert.equal(error.task.attempt, 2);
    assert.ok(error.task.finishedAt);
  });

  it("does not retry after UnrecoverableTaskError", async () => {
    const runtime = await startRuntime({ dir, tasks: [GiveUp] });
    const handle = await runtime.run(() => Task.startNew(GiveUp, null));
    const error = (await handle.wait({ timeoutMs: 5_000 }).catch((e: unknown) => e)) as TaskFailedError;
    assert.equal(error.task.state, "dead");
    assert.equal(error.task.attempt, 1);
    assert.equal(error.task.lastError?.name, "UnrecoverableTaskError");
  });

  it("records a thrown non-Error value", async () => {
    const runtime = await startRuntime({ dir, tasks: [ThrowsString] });
    const handle = await runtime.run(() => Task.startNew(ThrowsString, null));
    const error = (await handle.wait({ timeoutMs: 5_000 }).catch((e: unknown) => e)) as TaskFailedError;
    assert.equal(error.task.lastError?.message, "a non-Error value was thrown: 'plain string'");
  });

  it("never hands run errors to the caller of startNew", async () => {
    const runtime = await startRuntime({ dir, tasks: [GiveUp] });
    const handle = await runtime.run(() => Task.startNew(GiveUp, null));
    assert.ok(handle.id); // resolved normally although the task throws
  });
});

describe("timeout", () => {
  it("aborts the signal and fails the attempt with a timeout error", async () => {
    const runtime = await startRuntime({ dir, tasks: [Slow] });
    const handle = await runtime.run(() => Task.startNew(Slow, null));
    const error = (await handle.wait({ timeoutMs: 5_000 }).catch((e: unknown) => e)) as TaskFailedError;
    assert.equal(error.task.lastError?.name, "TaskTimeoutError");
    assert.equal(error.task.lastError?.message, "the attempt exceeded its timeout of 30 ms");
    assert.equal((Slow.abortedWith as Error).name, "TaskTimeoutError");
  });
});

describe("bad stored tasks", () => {
  it("fails a task whose stored bytes are corrupt, without retrying, and keeps working", async () => {
    const runtime = await startRuntime({ dir, tasks: [Flaky], worker: false });
    const handle = await runtime.run(() => Task.startNew(Flaky, { key: "c", succeedOn: 1 }));
    const good = await runtime.run(() => Task.startNew(Flaky, { key: "d", succeedOn: 1 }));
    await runtime.transaction(async (tx) => {
      await tx.execute("UPDATE underway_tasks SET parameters = ? WHERE id = ?", [Buffer.from([0xc1, 0xff, 0x00]), handle.id]);
    });
    await runtime.stop();
    const worker = await startRuntime({ dir: "", db: runtime.driver.description, tasks: [Flaky] });
    const error = (await worker.waitForTask(handle.id, { timeoutMs: 5_000 }).catch((e: unknown) => e)) as TaskFailedError;
    assert.equal(error.task.state, "dead");
    assert.equal(error.task.attempt, 1);
    assert.equal(error.task.lastError?.name, new TaskDeserializationError("parameters", "x").name);
    assert.equal((await worker.waitForTask(good.id, { timeoutMs: 5_000 })).state, "succeeded");
  });

  it("makes an unknown task name a visible failure, then dead", async () => {
    const producer = await startRuntime({ dir, tasks: [Flaky], worker: false });
    const handle = await producer.run(() => Task.startNew(Flaky, { key: "e", succeedOn: 1 }, { maxAttempts: 2 }));
    const worker = await startRuntime({ dir: "", db: producer.driver.description, worker: { pollIntervalMs: 10 } });
    const failed = await until(async () => {
      const t = await worker.getTask(handle.id);
      return t.state === "failed" ? t : null;
    }, "the unknown-name failure");
    assert.equal(failed.lastError?.name, "UnknownTaskError");
    assert.match(failed.lastError?.message ?? "", /no task class named "Flaky" is registered in this worker \(none is registered\); pass the class, or its module, in createRuntime\(\{ tasks: \[...\] \}\) \(or --tasks\): a class a task starts from its thread reaches this worker by name only/);
    worker.driver.clockShift(3_600_000);
    const error = (await worker.waitForTask(handle.id, { timeoutMs: 5_000 }).catch((e: unknown) => e)) as TaskFailedError;
    assert.equal(error.task.state, "dead");
  });
});
