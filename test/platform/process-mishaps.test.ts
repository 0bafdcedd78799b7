/**
 * What goes wrong around a process instance's own task: it is canceled or deleted (the instance
 * ends Canceled), an attempt is stopped or superseded while a script runs (it commits nothing), a
 * script leaves a value JSON cannot hold in context.parameters (its element fails, once), and a
 * script that never ends (its element fails at the first timeout, not after three). Delays are
 * moved past with the database clock; the watch's pass is called rather than waited for.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Platform } from "../../src/platform/platform.ts";
import { ProcessInstanceTask, type ProcessLog } from "../../src/platform/processes/engine.ts";
import { until } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";
import { processXml } from "./process-helpers.ts";

const WORK = `import type { IBackgroundTask } from "underway";

export class UsrMishapWork implements IBackgroundTask<Record<string, never>> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {}
}
`;

const PROCESSES: Record<string, string> = {
  UsrSlowProcess: processXml("UsrSlowProcess", "Slow", [
    { kind: "script", id: "Slow", body: "await new Promise((resolve) => setTimeout(resolve, 400));\nreturn true;" },
    { kind: "end", id: "End" },
  ]),
  UsrWaitingProcess: processXml("UsrWaitingProcess", "Waiting", [
    {
      kind: "script",
      id: "StartWork",
      usings: ["UsrMishapWork"],
      body: 'const handle = await Task.startNew(UsrMishapWork, {}, { delay: 60_000 });\ncontext.set("Work", handle.id);\ncontext.waitForTask(handle);\nreturn true;',
    },
    { kind: "end", id: "End" },
  ]),
  UsrForGoodProcess: processXml("UsrForGoodProcess", "For good", [
    { kind: "script", id: "Hold", body: "return false;" },
    { kind: "end", id: "End" },
  ]),
  UsrGatedProcess: processXml("UsrGatedProcess", "Gated", [
    { kind: "script", id: "A", body: 'await (globalThis as { __mishapGate?: (id: string) => Promise<void> }).__mishapGate?.("A");\ncontext.set("A", true);\nreturn true;' },
    { kind: "script", id: "B", body: 'await (globalThis as { __mishapGate?: (id: string) => Promise<void> }).__mishapGate?.("B");\nreturn true;' },
    { kind: "end", id: "End" },
  ]),
  UsrBigIntProcess: processXml("UsrBigIntProcess", "BigInt", [
    { kind: "script", id: "Direct", body: "(context.parameters as Record<string, unknown>).Big = 10n;\nreturn true;" },
    { kind: "end", id: "End" },
  ]),
  UsrFunctionProcess: processXml("UsrFunctionProcess", "Function", [
    { kind: "script", id: "Direct", body: "(context.parameters as Record<string, unknown>).Fn = () => 1;\nreturn true;" },
    { kind: "end", id: "End" },
  ]),
  UsrHeedingProcess: processXml("UsrHeedingProcess", "Heeding", [
    {
      kind: "script",
      id: "Heed",
      body:
        'await new Promise((resolve) => context.signal.addEventListener("abort", resolve));\n' +
        '(globalThis as { __mishapHeard?: unknown }).__mishapHeard = (context.signal.reason as Error).name;\nreturn true;',
    },
    { kind: "end", id: "End" },
  ]),
  UsrEndlessProcess: processXml("UsrEndlessProcess", "Endless", [
    { kind: "script", id: "Endless", body: "await new Promise(() => {});\nreturn true;" },
    { kind: "end", id: "End" },
  ]),
};

async function publish(platform: Platform): Promise<void> {
  await platform.packages.ensurePackage("UsrMishaps");
  await platform.packages.saveSchema("UsrMishaps", { name: "UsrMishapWork", kind: "source", body: WORK });
  for (const [name, body] of Object.entries(PROCESSES)) await platform.packages.saveSchema("UsrMishaps", { name, kind: "process", body });
  await platform.packages.publish("UsrMishaps");
}

const admin = (platform: Platform) => platform.appConnection.systemUserConnection;
const execute = (platform: Platform, code: string) => platform.processEngine.execute(admin(platform), code);
const logOf = async (platform: Platform, instanceId: string): Promise<ProcessLog> => (await platform.processEngine.getLog(instanceId, admin(platform)))!;
const shape = (log: ProcessLog) => log.elements.map((e) => `${e.elementId}:${e.status}${e.waiting ? "(waiting)" : ""}`);

function settled(platform: Platform, instanceId: string, what: (log: ProcessLog) => boolean, limitMs = 15_000): Promise<ProcessLog> {
  return until(async () => {
    const log = await logOf(platform, instanceId);
    return what(log) ? log : null;
  }, `process instance ${instanceId} to settle`, limitMs);
}
const ended = (platform: Platform, instanceId: string, limitMs?: number) => settled(platform, instanceId, (log) => log.status !== "Running", limitMs);

/** Scripts wait at their gate until the test opens it (the engine runs them in this process: no worker). */
function gates(): { reached: (id: string, count: number) => Promise<void>; open: (id: string) => void; close: () => void } {
  const waiting = new Map<string, (() => void)[]>();
  const arrivals = new Map<string, number>();
  (globalThis as { __mishapGate?: (id: string) => Promise<void> }).__mishapGate = (id) =>
    new Promise<void>((resolve) => {
      arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
      waiting.set(id, [...(waiting.get(id) ?? []), resolve]);
    });
  return {
    reached: async (id, count) => {
      await until(() => (arrivals.get(id) ?? 0) >= count, `${count} scripts to reach gate ${id}`);
    },
    open: (id) => waiting.get(id)?.shift()?.(),
    close: () => delete (globalThis as { __mishapGate?: unknown }).__mishapGate,
  };
}

for (const store of STORES) {
  describe(`process instances whose own task is canceled or deleted, on ${store}`, () => {
    it("a running instance's task canceled: the instance and its running element end Canceled", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publish(platform);
      const { instanceId, taskId } = await execute(platform, "UsrSlowProcess");
      await settled(platform, instanceId, (log) => log.elements.some((e) => e.elementId === "Slow"));
      assert.equal(await platform.runtime.cancelTask(taskId), true);
      const done = await ended(platform, instanceId, 5_000);
      assert.equal(done.status, "Canceled");
      assert.deepEqual(shape(done), ["Start:Completed", "Slow:Canceled"]);
      assert.ok(done.completedOn);
    });

    it("a script hears its attempt stop through context.signal, and ends then", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, isolation: "none" });
      await publish(platform);
      const heard = globalThis as { __mishapHeard?: unknown };
      delete heard.__mishapHeard;
      const { instanceId, taskId } = await execute(platform, "UsrHeedingProcess");
      await settled(platform, instanceId, (log) => log.elements.some((e) => e.elementId === "Heed"));
      assert.equal(await platform.runtime.cancelTask(taskId), true);
      await until(() => heard.__mishapHeard !== undefined, "the script to hear the cancel");
      assert.equal(heard.__mishapHeard, "TaskCanceledError");
      assert.equal((await ended(platform, instanceId, 5_000)).status, "Canceled");
      delete heard.__mishapHeard;
    });

    it("a queued instance task canceled or deleted: the watch ends the instance as Canceled", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, worker: false });
      await publish(platform);
      const canceled = await execute(platform, "UsrSlowProcess");
      const deleted = await execute(platform, "UsrSlowProcess");
      assert.equal(await platform.runtime.cancelTask(canceled.taskId), true);
      assert.equal(await platform.runtime.deleteTask(deleted.taskId), true);
      assert.equal(await platform.processTaskWatch.runOnce(), 2);
      for (const q of [canceled, deleted]) {
        const log = await logOf(platform, q.instanceId);
        assert.equal(log.status, "Canceled");
        assert.deepEqual(shape(log), []);
      }
      // Nothing changed since: the next pass reads nothing.
      assert.equal(await platform.processTaskWatch.runOnce(), 0);
    });

    it("a waiting element's continuation canceled or deleted: the watch ends the instance; a waiting-for-good task deleted leaves it waiting", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publish(platform);
      const waiting = [await execute(platform, "UsrWaitingProcess"), await execute(platform, "UsrWaitingProcess")];
      const continuations: string[] = [];
      for (const w of waiting) continuations.push((await settled(platform, w.instanceId, (log) => log.elements.some((e) => e.waiting))).taskId!);
      const forGood = await execute(platform, "UsrForGoodProcess");
      await settled(platform, forGood.instanceId, (log) => log.elements.some((e) => e.waiting));
      await until(async () => (await platform.runtime.getTask(forGood.taskId)).state === "succeeded", "the waiting-for-good run to end");

      assert.equal(await platform.runtime.cancelTask(continuations[0]!), true);
      assert.equal(await platform.runtime.deleteTask(continuations[1]!), true);
      // The task of a script that returned false ended long ago; retention deletes it in time.
      assert.equal(await platform.runtime.deleteTask(forGood.taskId), true);
      await platform.processTaskWatch.runOnce();

      const canceled = await logOf(platform, waiting[0]!.instanceId);
      assert.equal(canceled.status, "Canceled");
      assert.deepEqual(shape(canceled), ["Start:Completed", "StartWork:Canceled(waiting)"]);
      // Its continuation deleted, the element could never go on: Canceled too.
      const stranded = await logOf(platform, waiting[1]!.instanceId);
      assert.equal(stranded.status, "Canceled");
      assert.deepEqual(shape(stranded), ["Start:Completed", "StartWork:Canceled(waiting)"]);
      // The task of a script that returned false, deleted: the element still waits for good.
      const held = await logOf(platform, forGood.instanceId);
      assert.equal(held.status, "Running");
      assert.deepEqual(shape(held), ["Start:Completed", "Hold:Running(waiting)"]);
    });
  });

  describe(`stopped and superseded runs of an instance, on ${store}`, () => {
    it("an attempt stopped while its script ran commits nothing: the element stays Running for the next attempt", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, worker: false });
      await publish(platform);
      const gate = gates();
      try {
        const { instanceId } = await execute(platform, "UsrGatedProcess");
        const stop = new AbortController();
        const run = platform.processEngine.runInstance(instanceId, admin(platform), stop.signal);
        await gate.reached("A", 1);
        stop.abort(new Error("the attempt exceeded its timeout"));
        gate.open("A");
        await assert.rejects(run, /exceeded its timeout/);
        const log = await logOf(platform, instanceId);
        assert.equal(log.status, "Running");
        assert.deepEqual(shape(log), ["Start:Completed", "A:Running"]);
        assert.deepEqual(log.parameters, {});
      } finally {
        gate.close();
      }
    });

    it("two runs of one instance at once: the one that completes an element first goes on, the other stops without an error", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, worker: false });
      await publish(platform);
      const gate = gates();
      try {
        const { instanceId } = await execute(platform, "UsrGatedProcess");
        const signal = new AbortController().signal;
        const first = platform.processEngine.runInstance(instanceId, admin(platform), signal);
        await gate.reached("A", 1);
        const second = platform.processEngine.runInstance(instanceId, admin(platform), signal);
        await gate.reached("A", 2);
        gate.open("A"); // the first run completes A and begins B
        await gate.reached("B", 1);
        gate.open("A"); // the second run's A returns: A is no longer running
        await second;
        gate.open("B");
        await first;
        const log = await logOf(platform, instanceId);
        assert.equal(log.status, "Completed");
        assert.deepEqual(shape(log), ["Start:Completed", "A:Completed", "B:Completed", "End:Completed"]);
      } finally {
        gate.close();
      }
    });
  });

  describe(`scripts that break their instance's task, on ${store}`, () => {
    it("a value JSON cannot hold written straight into context.parameters fails the element once, naming the parameter", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publish(platform);
      for (const [code, message] of [
        ["UsrBigIntProcess", 'TypeError: context.parameters["Big"]: the value cannot be stored as JSON: Do not know how to serialize a BigInt'],
        ["UsrFunctionProcess", 'TypeError: context.parameters["Fn"]: a function cannot be stored as a parameter'],
      ] as const) {
        const { instanceId, taskId } = await execute(platform, code);
        const done = await ended(platform, instanceId);
        assert.equal(done.status, "Error");
        assert.equal(done.errorMessage, message);
        assert.deepEqual(shape(done), ["Start:Completed", "Direct:Error"]);
        const task = await until(async () => {
          const t = await platform.runtime.getTask(taskId);
          return t.state === "succeeded" ? t : null;
        }, "the instance's task to end");
        assert.equal(task.attempt, 1, "the script ran once");
      }
    });

    it("a script that does not end before the task's timeout fails its element at the first timeout, not after three", async () => {
      const options = ProcessInstanceTask.taskOptions;
      const timeoutMs = options.timeoutMs;
      // The class's options are read when the platform registers it.
      options.timeoutMs = 500;
      let platform: Platform;
      try {
        // In-process: a thread that ignores its abort is stopped only after a grace of seconds.
        platform = await startPlatform(store, { packageRefreshMs: 0, isolation: "none" });
      } finally {
        options.timeoutMs = timeoutMs;
      }
      await publish(platform);
      const { instanceId, taskId } = await execute(platform, "UsrEndlessProcess");
      // Past the retry's backoff, on the database clock.
      await until(async () => (await platform.runtime.getTask(taskId)).state === "failed", "the first attempt to time out");
      platform.runtime.driver.clockShift(3_600_000);
      platform.runtime.worker?.wake();
      const done = await ended(platform, instanceId);
      assert.equal(done.status, "Error");
      assert.match(done.errorMessage ?? "", /^TaskTimeoutError: the script of "Endless" did not end before the timeout of the instance's task \(.*500 ms.*\); a script that timed out is not run again$/);
      assert.deepEqual(shape(done), ["Start:Completed", "Endless:Error"]);
      const task = await until(async () => {
        const t = await platform.runtime.getTask(taskId);
        return t.state === "succeeded" ? t : null;
      }, "the second attempt to end");
      assert.equal(task.attempt, 2);
    });
  });
}
