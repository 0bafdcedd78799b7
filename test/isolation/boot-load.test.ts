/**
 * A task thread loads the modules of the task classes its process knows as it boots, not at the
 * first attempt of each class: that attempt would otherwise wait for the load (a TypeScript module
 * through tsx takes milliseconds). A module that cannot load in a thread does not keep the thread
 * from booting: its class's attempts fail with the reason, and the others run.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task, TaskFailedError } from "../../src/index.ts";
import { WhereLoadedTask } from "../fixtures/boot-load-tasks.ts";
import { RefusedInThreadTask } from "../fixtures/thread-refused-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

it("loads the task classes' modules as a thread boots, and a module that cannot load there fails only its class", async () => {
  const dir = tempDir();
  const loads = join(dir, "loads.txt");
  process.env.UNDERWAY_TEST_LOADS = loads;
  after(() => delete process.env.UNDERWAY_TEST_LOADS);
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [WhereLoadedTask, RefusedInThreadTask], isolation: { mode: "thread", minThreads: 1 } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  // Booted, and nothing started yet: the thread has loaded the module.
  const booted = readFileSync(loads, "utf8").trim().split("\n");
  assert.equal(booted.length, 1, `one thread loaded the module as it booted: ${booted.join(", ")}`);

  const refused = await runtime.run(() => Task.startNew(RefusedInThreadTask, null, { maxAttempts: 1 }));
  const error = (await runtime.waitForTask(refused.id, { timeoutMs: 20_000 }).catch((e: unknown) => e)) as TaskFailedError;
  assert.ok(error instanceof TaskFailedError, `expected the task to fail, got ${String(error)}`);
  assert.match(error.task.lastError?.message ?? "", /refuses to load in a task thread/);

  const ran = await runtime.run(() => Task.startNew(WhereLoadedTask, null));
  const thread = await ran.result({ timeoutMs: 20_000 });
  assert.ok(booted.includes(String(thread)), `ran on thread ${String(thread)}, which loaded the module as it booted (${booted.join(", ")})`);
  assert.deepEqual(readFileSync(loads, "utf8").trim().split("\n"), booted, "no thread loaded the module again");
});
