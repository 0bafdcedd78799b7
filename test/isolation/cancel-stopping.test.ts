/**
 * A task canceled while its attempt runs in a thread, whose code ignores the signal: the thread
 * has its abort grace to stop, and until the attempt has ended the task can be neither retried
 * nor deleted, so that no second attempt runs beside the first.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { IgnoresCancelTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
}

it("refuses a retry and a delete until the canceled attempt has ended, then runs attempt 2 after it", async () => {
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 2, heartbeatMs: 50 },
    isolation: { mode: "thread", minThreads: 1, abortGraceMs: 30_000 },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const ledger = join(dir, "ledger.txt");
  const gateFile = join(dir, "gate");
  // Waits for the gate file whatever its signal says (up to a minute).
  const handle = await runtime.run(() => Task.startNew(IgnoresCancelTask, { file: ledger, gate: gateFile, waitMs: 60_000 }));
  await until(() => lines(ledger).length === 1, "the attempt's code to run", 10_000);
  assert.equal(await runtime.cancelTask(handle.id), true);
  assert.equal((await handle.get()).stopping, true);
  assert.equal(await runtime.retryTask(handle.id), false, "retried while attempt 1 still runs");
  assert.equal(await runtime.deleteTask(handle.id), false, "deleted while attempt 1 still runs");
  // Heartbeats keep the canceled run's lease while it goes on.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await handle.get()).stopping, true);
  assert.equal(await runtime.retryTask(handle.id), false);
  writeFileSync(gateFile, "");
  await until(() => lines(ledger).length === 2, "attempt 1 to end by itself", 10_000);
  await until(async () => (await handle.get()).stopping === false, "the ended attempt to let go of its lease", 10_000);
  assert.equal(await runtime.retryTask(handle.id), true);
  await handle.wait({ timeoutMs: 10_000 });
  assert.deepEqual(lines(ledger), ["started:1", "ended:1", "started:2", "ended:2"], "attempt 2 ran after attempt 1 ended");
});
