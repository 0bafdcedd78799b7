/**
 * A continuation stored by a task in a thread, after its predecessor ended: the thread has no
 * continuer of its own, so the worker's process starts it as soon as it is stored, as it does for
 * one stored in the process, without waiting for the maintenance leader's pass (an hour here).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { Task } from "../../src/index.ts";
import { ContinuesAfterEndedTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { runtimeOn } from "../scheduling/stores.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

it("starts a continuation an isolated task stored after its predecessor ended, without the leader's pass", async () => {
  const path = tempDb(dir);
  const runtime = await runtimeOn(() => new SqliteDriver({ path }), { tasks: [FIXTURES], isolation: { mode: "thread" } });
  const file = join(dir, "ledger.txt");
  const starter = await runtime.run(() => Task.startNew(ContinuesAfterEndedTask, { file, n: 1 }));
  // It waits for its continuation, for 8 s at most: it succeeds only if the continuation ran by then.
  const ended = await runtime.waitForTask(starter.id, { timeoutMs: 20_000 }).catch(() => runtime.getTask(starter.id));
  assert.equal(ended.state, "succeeded", JSON.stringify(ended.lastError));
  assert.ok(readFileSync(file, "utf8").split("\n").some((line) => line.startsWith("2:")), "the continuation ran");
});
