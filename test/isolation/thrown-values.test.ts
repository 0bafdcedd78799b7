/**
 * What a task in a thread may throw or do that the worker must survive and report as it is: a
 * value that is no object thrown outside run, an Error whose properties throw when read, a long
 * synchronous cleanup after its abort, and a stop of one attempt on a thread it shares with one
 * other.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task, type Runtime, type RuntimeConfig } from "../../src/index.ts";
import { LedgerTask, MostlyShortTask, SlowCleanupTask, ThrowsNullLaterTask, ThrowsUnreadableErrorTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";
import { ended } from "./helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

async function started(extra: Partial<RuntimeConfig> = {}): Promise<{ runtime: Runtime; dir: string }> {
  const dir = tempDir();
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 4 },
    isolation: { mode: "thread", abortGraceMs: 5_000 },
    ...extra,
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return { runtime, dir };
}

it("ends only its thread when a task throws null outside run; the worker and other tasks go on", async () => {
  const { runtime, dir } = await started();
  const file = join(dir, "ledger.txt");
  const thrower = await runtime.run(() => Task.startNew(ThrowsNullLaterTask, null, { maxAttempts: 1 }));
  const task = await ended(runtime, thrower.id);
  assert.equal(task.state, "dead");
  assert.equal(task.lastError?.name, "TaskExitedError");
  assert.match(task.lastError?.message ?? "", /a non-Error value was thrown: null was thrown outside run/);
  const [ordinary] = await runtime.run(() => Task.startNewMany(LedgerTask, [{ file, n: 1 }]));
  assert.equal((await ended(runtime, ordinary!.id)).state, "succeeded");
});

it("fails an attempt whose Error cannot be read with what can be, and keeps its thread", async () => {
  const { runtime } = await started();
  const handle = await runtime.run(() => Task.startNew(ThrowsUnreadableErrorTask, null, { maxAttempts: 1 }));
  const task = await ended(runtime, handle.id);
  assert.equal(task.state, "dead");
  assert.deepEqual([task.lastError?.name, task.lastError?.message], ["Error", "its message is readable"]);
});

it("lets a task finish its synchronous cleanup after its abort, within abortGraceMs", async () => {
  const { runtime, dir } = await started();
  const file = join(dir, "cleanup.txt");
  const handle = await runtime.run(() => Task.startNew(SlowCleanupTask, { file, cleanupMs: 600 }, { timeoutMs: 300, maxAttempts: 1 }));
  const task = await ended(runtime, handle.id);
  assert.equal(task.lastError?.name, "TaskTimeoutError");
  await until(() => existsSync(file), "the cleanup's record", 5_000);
  assert.equal(readFileSync(file, "utf8"), "cleaned up\n");
});

it("runs again, uncounted, the one other attempt on a shared thread whose attempt timed out", async () => {
  const { runtime, dir } = await started();
  const file = join(dir, "shared.txt");
  // Proven short: the class's attempts share threads from now on.
  const warm = await runtime.run(() => Task.startNewMany(MostlyShortTask, Array.from({ length: 24 }, (_, n) => ({ file, n, waitMs: 0, spin: false }))));
  for (const h of warm) assert.equal((await ended(runtime, h.id)).state, "succeeded");

  const [waiting] = await runtime.run(() => Task.startNewMany(MostlyShortTask, [{ file, n: 100, waitMs: 1_500, spin: false }], { maxAttempts: 1 }));
  const spinner = await runtime.run(() => Task.startNew(MostlyShortTask, { file, n: 999, waitMs: 0, spin: true }, { timeoutMs: 500, maxAttempts: 1 }));
  const spun = await ended(runtime, spinner.id);
  assert.equal(spun.lastError?.name, "TaskTimeoutError");
  const task = await ended(runtime, waiting!.id);
  assert.equal(task.state, "succeeded", `${task.lastError?.name}: ${task.lastError?.message}`);
  assert.equal(task.attempt, 1, "handed back, not counted as a failed attempt");
});
