/**
 * Composition on both stores: results read by the caller, continuations (after success, after
 * any end, after a batch), and dead letters requeued one at a time or by filter.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Task, TaskFailedError, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
import { until } from "../helpers.ts";
import { newStore, runtimeOn, STORES } from "../scheduling/stores.ts";

const log: string[] = [];

class Sum implements IBackgroundTask<{ values: number[] }, { total: number; at: string }> {
  run(p: { values: number[] }): { total: number; at: string } {
    return { total: p.values.reduce((a, b) => a + b, 0), at: "now" };
  }
}

class Quiet implements IBackgroundTask<{ label: string }> {
  async run(p: { label: string }): Promise<void> {
    log.push(p.label);
  }
}

class Unstorable implements IBackgroundTask<Record<string, never>, unknown> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): unknown {
    return { callback: () => 1 };
  }
}

class Fails implements IBackgroundTask<{ label: string }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(p: { label: string }, context: TaskContext): void {
    log.push(`${p.label}:${context.attempt}`);
    throw new Error(`${p.label} failed`);
  }
}

/** Fails until told otherwise: a dead letter that a fix makes succeed on requeue. */
let fixed = false;
class Flaky implements IBackgroundTask<{ label: string }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(p: { label: string }): void {
    if (!fixed) throw new Error(`${p.label}: not fixed yet`);
    log.push(`${p.label}:fixed`);
  }
}

const TASKS = [Sum, Quiet, Unstorable, Fails, Flaky];

for (const store of STORES) {
  describe(`composition (${store})`, () => {
    it("stores what run returns; handle.result() waits for it", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: TASKS });
      const handle = await runtime.run(() => Task.startNew(Sum, { values: [1, 2, 39] }));
      assert.deepEqual(await handle.result<{ total: number }>({ timeoutMs: 5_000 }), { total: 42, at: "now" });
      assert.equal((await handle.get()).hasResult, true);
      const quiet = await runtime.run(() => Task.startNew(Quiet, { label: "no result" }));
      assert.equal(await quiet.result({ timeoutMs: 5_000 }), undefined);
      const bad = await runtime.run(() => Task.startNew(Unstorable, {}));
      await assert.rejects(bad.result({ timeoutMs: 5_000 }), TaskFailedError);
      assert.match((await bad.get()).lastError?.message ?? "", /result\.callback: a function cannot be serialized/);
      await assert.rejects(runtime.getTaskResult(bad.id), new RegExp(`task ${bad.id} has no result: it is dead`));
    });

    it("starts a continuation when its predecessor succeeds, and cancels it when it fails", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: TASKS });
      const a = await runtime.run(() => Task.startNew(Quiet, { label: `${store}:A` }));
      const afterA = await runtime.run(() => Task.continueWith(a, Quiet, { label: `${store}:after A` }));
      await afterA.wait({ timeoutMs: 5_000 });
      assert.ok(log.indexOf(`${store}:A`) < log.indexOf(`${store}:after A`));
      const f = await runtime.run(() => Task.startNew(Fails, { label: `${store}:F` }));
      const afterF = await runtime.run(() => Task.continueWith(f, Quiet, { label: `${store}:after F` }));
      const whatever = await runtime.run(() => Task.continueWith(f.id, Quiet, { label: `${store}:after F anyway` }, { when: "ended" }));
      await assert.rejects(afterF.wait({ timeoutMs: 5_000 }), TaskFailedError);
      const canceled = await afterF.get();
      assert.equal(canceled.state, "canceled");
      assert.equal(canceled.lastError?.message, `task ${f.id} ended dead; this continuation runs only when it succeeds`);
      await whatever.wait({ timeoutMs: 5_000 });
      assert.ok(!log.includes(`${store}:after F`));
    });

    it("starts a batch's continuation once every task of the batch has ended", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: TASKS });
      const gateId = await runtime.run(() => Task.startNew(Quiet, { label: "gate" }, { delayMs: 3_600_000 }));
      const batch = await runtime.run(() => Task.startNewMany(Quiet, [{ label: "b1" }, { label: "b2" }]));
      const failing = await runtime.run(() => Task.startNew(Fails, { label: `${store}:b3` }));
      const done = await runtime.run(() => Task.continueWith([...batch, failing, gateId], Quiet, { label: `${store}:batch done` }, { when: "ended" }));
      await Promise.all(batch.map((h) => h.wait({ timeoutMs: 5_000 })));
      await assert.rejects(failing.wait({ timeoutMs: 5_000 }));
      await runtime.continuer?.runOnce();
      // The runtime's own continuer may hold those edges at this moment (PostgreSQL: SKIP LOCKED),
      // and the pass above then finds nothing to do: wait for whichever pass took them.
      await until(async () => (await done.get()).waitingFor === 1, "the batch's ended tasks to be counted"); // the delayed one has not run
      assert.equal((await done.get()).state, "queued");
      runtime.driver.clockShift(3_600_000);
      runtime.worker?.wake();
      await done.wait({ timeoutMs: 5_000 });
      assert.ok(log.includes(`${store}:batch done`));
      await assert.rejects(runtime.run(() => Task.continueWith("999999", Quiet, { label: "x" })), /cannot continue after task 999999: no such task/);
      // Like startNew, mistakes of the call itself throw from the call.
      assert.throws(() => runtime.run(() => Task.continueWith([], Quiet, { label: "x" })), /after must name at least one task/);
      assert.throws(
        () => runtime.run(() => Task.continueWith(gateId, Quiet, { label: "x" }, { when: "always" as never })),
        /options.when must be "succeeded" or "ended", got "always"/,
      );
    });

    it("requeues dead letters one at a time or all matching a filter", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: TASKS });
      fixed = false;
      const handles = await runtime.run(() => Task.startNewMany(Flaky, [{ label: `${store}:d1` }, { label: `${store}:d2` }, { label: `${store}:d3` }]));
      const other = await runtime.run(() => Task.startNew(Fails, { label: `${store}:other` }));
      for (const h of [...handles, other]) await assert.rejects(h.wait({ timeoutMs: 5_000 }));
      const dead = await runtime.listTasks({ states: ["dead"] });
      assert.equal(dead.items.length, 4);
      fixed = true;
      const [first, ...rest] = handles;
      assert.ok(first);
      assert.equal(await runtime.retryTask(first.id), true);
      await first.wait({ timeoutMs: 5_000 });
      assert.equal(await runtime.requeueTasks({ name: "Flaky" }), 2);
      await Promise.all(rest.map((h) => h.wait({ timeoutMs: 5_000 })));
      assert.deepEqual((await runtime.listTasks({ states: ["dead"] })).items.map((t) => t.id), [other.id]);
      assert.equal(await runtime.requeueTasks({ name: "Flaky" }), 0);
    });
  });
}
