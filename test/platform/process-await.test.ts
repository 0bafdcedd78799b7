/**
 * A process that waits for a background task it started (context.waitForTask): the element
 * completes when the task succeeds and goes to Error when the task ends dead or canceled; the wait
 * is a continuation in the store, so it survives a restart. Delays are moved past with the
 * database clock, never waited for.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Platform } from "../../src/platform/platform.ts";
import type { ProcessLog } from "../../src/platform/processes/engine.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";
import { processXml } from "./process-helpers.ts";

const WORK = `import type { IBackgroundTask } from "underway";

export class UsrAwaitedWork implements IBackgroundTask<{ outcome: string }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(parameters: { outcome: string }): void {
    if (parameters.outcome === "die") throw new Error("the import broke");
  }
}
`;

const AWAIT_PROCESS = processXml(
  "UsrAwaitProcess",
  "Await",
  [
    {
      kind: "script",
      id: "StartWork",
      usings: ["UsrAwaitedWork"],
      body: [
        'const handle = await Task.startNew(UsrAwaitedWork, { outcome: String(context.get("Outcome")) }, { delay: 60_000 });',
        'context.set("Work", handle.id);',
        "context.waitForTask(handle);",
        "return true;",
      ].join("\n"),
    },
    { kind: "script", id: "After", body: 'context.set("After", true); return true;' },
    { kind: "end", id: "End" },
  ],
  [{ name: "Outcome", type: "text", default: "succeed" }],
);

const BAD_WAIT_PROCESS = processXml("UsrBadWaitProcess", "Bad wait", [
  { kind: "script", id: "Bad", body: "context.waitForTask(42 as unknown as string); return true;" },
  { kind: "end", id: "End" },
]);

async function publish(platform: Platform): Promise<void> {
  await platform.packages.ensurePackage("UsrAwait");
  await platform.packages.saveSchema("UsrAwait", { name: "UsrAwaitedWork", kind: "source", body: WORK });
  await platform.packages.saveSchema("UsrAwait", { name: "UsrAwaitProcess", kind: "process", body: AWAIT_PROCESS });
  await platform.packages.saveSchema("UsrAwait", { name: "UsrBadWaitProcess", kind: "process", body: BAD_WAIT_PROCESS });
  await platform.packages.publish("UsrAwait");
}

async function logOf(platform: Platform, instanceId: string): Promise<ProcessLog | null> {
  return platform.processEngine.getLog(instanceId, platform.appConnection.systemUserConnection);
}

/** Runs the process and resolves once it has ended or an element waits. */
async function runUntilSettled(platform: Platform, code: string, parameters: Record<string, unknown> = {}): Promise<ProcessLog> {
  const { instanceId } = await platform.appConnection.systemUserConnection.processEngine.processExecutor.execute(code, parameters);
  return settled(platform, instanceId);
}

function settled(platform: Platform, instanceId: string): Promise<ProcessLog> {
  return until(async () => {
    const log = await logOf(platform, instanceId);
    return log && (log.status !== "Running" || log.elements.some((e) => e.waiting)) ? log : null;
  }, `process instance ${instanceId} to settle`, 20_000);
}

function ended(platform: Platform, instanceId: string): Promise<ProcessLog> {
  return until(async () => {
    const log = await logOf(platform, instanceId);
    return log && log.status !== "Running" ? log : null;
  }, `process instance ${instanceId} to end`, 20_000);
}

const shape = (log: ProcessLog) => log.elements.map((e) => `${e.elementId}:${e.status}${e.waiting ? "(waiting)" : ""}`);

/** Moves the database clock past the awaited tasks' delay and wakes the worker. */
function passTheDelay(platform: Platform): void {
  platform.runtime.driver.clockShift(61_000);
  platform.runtime.worker?.wake();
}

for (const store of STORES) {
  describe(`processes waiting for tasks on ${store}`, () => {
    it("an element waits for the task its script started: done when it succeeds, Error when it dies or is canceled", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publish(platform);

      const ok = await runUntilSettled(platform, "UsrAwaitProcess");
      assert.equal(ok.status, "Running", ok.errorMessage ?? "");
      assert.deepEqual(shape(ok), ["Start:Completed", "StartWork:Running(waiting)"]);
      const workId = ok.parameters.Work;
      assert.equal(typeof workId, "string");
      assert.equal((await platform.runtime.getTask(String(workId))).state, "queued");
      // The instance's task is now the continuation that resumes it once the awaited task has ended.
      const resumer = await platform.runtime.getTask(ok.taskId ?? "");
      assert.equal(resumer.name, "underway.ProcessInstance");
      assert.equal(resumer.state, "queued");
      assert.equal(resumer.waitingFor, 1);

      const dies = await runUntilSettled(platform, "UsrAwaitProcess", { Outcome: "die" });
      assert.deepEqual(shape(dies), ["Start:Completed", "StartWork:Running(waiting)"]);
      const canceled = await runUntilSettled(platform, "UsrAwaitProcess", { Outcome: "cancel" });
      assert.equal(await platform.runtime.cancelTask(String(canceled.parameters.Work)), true);

      passTheDelay(platform);

      const done = await ended(platform, ok.id);
      assert.equal(done.status, "Completed");
      assert.deepEqual(shape(done), ["Start:Completed", "StartWork:Completed", "After:Completed", "End:Completed"]);
      assert.equal(done.parameters.After, true);
      assert.equal((await platform.runtime.getTask(String(workId))).state, "succeeded");

      const dead = await ended(platform, dies.id);
      assert.equal(dead.status, "Error");
      assert.deepEqual(shape(dead), ["Start:Completed", "StartWork:Error"]);
      assert.match(dead.errorMessage ?? "", /^Error: the import broke \(the awaited task UsrAwaitedWork \S+ ended dead\)$/);
      assert.equal(dead.elements.at(-1)?.errorMessage, dead.errorMessage);

      const stopped = await ended(platform, canceled.id);
      assert.equal(stopped.status, "Error");
      assert.deepEqual(shape(stopped), ["Start:Completed", "StartWork:Error"]);
      assert.match(stopped.errorMessage ?? "", /^TaskCanceledError: .*\(the awaited task UsrAwaitedWork \S+ ended canceled\)$/);
    });

    it("refuses what is not a task to wait for, naming it", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publish(platform);
      const bad = await runUntilSettled(platform, "UsrBadWaitProcess");
      assert.equal(bad.status, "Error");
      assert.deepEqual(shape(bad), ["Start:Completed", "Bad:Error"]);
      assert.equal(bad.errorMessage, "TypeError: context.waitForTask needs a task handle (what Task.startNew returns) or a task id, got 42");
    });

    it(
      "a cancel that comes while the engine completes an element: the engine finishes its step, the cancel then ends the instance, and neither fails",
      { skip: store === "postgres" ? false : "row locks: SQLite's write transaction holds the whole file" },
      async () => {
        const schema = tempSchema();
        const platform = await Platform.start({ db: `${TEST_POSTGRES_URL}?schema=${schema}`, logger: false, secret: "process await test secret", adminPassword: "await-pass", packageRefreshMs: 0 });
        after(() => platform.stop({ graceMs: 0 }));
        await publish(platform);
        const waiting = await runUntilSettled(platform, "UsrAwaitProcess");
        assert.deepEqual(shape(waiting), ["Start:Completed", "StartWork:Running(waiting)"]);
        const { default: pg } = await import("pg");
        const holder = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        const watcher = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await holder.connect();
        await watcher.connect();
        after(() => Promise.all([holder.end(), watcher.end()]));
        // The waiting element's row is held: the engine, resumed, reads the instance and then waits
        // to complete the element; the cancel comes while it waits.
        await holder.query(`SET search_path TO "${schema}"`);
        await holder.query("BEGIN");
        await holder.query(`SELECT 1 FROM "SysProcessElementLog" WHERE "ProcessLogId" = $1 AND "Seq" = 2 FOR UPDATE`, [waiting.id]);
        const held = Number((await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
        const waitingFor = async (pids: number[]) =>
          (await watcher.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && $1::int[]", [pids])).rows.map((r) => Number(r.pid));
        passTheDelay(platform);
        const [engine] = await until(async () => {
          const pids = await waitingFor([held]);
          return pids.length > 0 ? pids : null;
        }, "the engine to wait for the element's row", 20_000);
        const canceling = platform.processEngine.cancel(waiting.id, platform.appConnection.systemUserConnection);
        await until(async () => (await waitingFor([held, engine!])).length >= 2, "the cancel to wait too");
        await holder.query("ROLLBACK");
        assert.equal(await canceling, true);
        const done = await ended(platform, waiting.id);
        assert.equal(done.status, "Canceled");
        assert.deepEqual(shape(done), ["Start:Completed", "StartWork:Completed", "After:Canceled"]);
        // The resumed run saw the cancel and left: its task succeeded, nothing is left running.
        await until(async () => (await platform.runtime.getTask(done.taskId ?? "")).state === "succeeded", "the resumed run to end");
        assert.deepEqual(shape((await logOf(platform, waiting.id))!), ["Start:Completed", "StartWork:Completed", "After:Canceled"]);
      },
    );

    it("keeps waiting across a restart: the wait is stored, not held in memory", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const config = { db, logger: false as const, secret: "process await test secret", adminPassword: "await-pass", packageRefreshMs: 0 };
      const first = await Platform.start(config);
      after(() => first.stop({ graceMs: 0 }));
      await publish(first);
      const waiting = await runUntilSettled(first, "UsrAwaitProcess");
      assert.deepEqual(shape(waiting), ["Start:Completed", "StartWork:Running(waiting)"]);
      await first.stop({ graceMs: 1_000 });

      const second = await Platform.start(config);
      after(() => second.stop({ graceMs: 0 }));
      passTheDelay(second);
      const done = await ended(second, waiting.id);
      assert.equal(done.status, "Completed");
      assert.deepEqual(shape(done), ["Start:Completed", "StartWork:Completed", "After:Completed", "End:Completed"]);
    });
  });
}
