/**
 * The driver conformance of issue #9: results, trace context, continuations, dead-letter requeue,
 * statistics and schedules. Run by sqlite.test.ts and postgres.test.ts beside driverSuite.
 * Time is moved with clockShift, never waited for.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import pino from "pino";
import { Continuer } from "../../src/maintenance/continuer.ts";
import type { StorageDriver } from "../../src/store/driver.ts";
import { closeAll, task, type DriverFactory } from "./driver-suite.ts";

const MINUTE = 60_000;

export function compositionSuite(factory: DriverFactory): void {
  describe(`driver conformance, scheduling and composition: ${factory.name}`, () => {
    const opened: StorageDriver[] = [];
    const fresh = async (): Promise<StorageDriver> => {
      const d = await factory.create();
      await d.migrate();
      opened.push(d);
      return d;
    };
    // Each test's stores close when it ends (see driverSuite).
    afterEach(() => closeAll(opened.splice(0)));

    /** Claims every due task and records it as succeeded (or failed for good), returning their ids. */
    async function finish(d: StorageDriver, outcome: "succeeded" | "dead", result?: Uint8Array): Promise<string[]> {
      const runs = await d.taskClaim({ workerId: "w", limit: 100, leaseMs: 60_000 });
      await d.taskCompleteMany(
        runs.map((r) =>
          outcome === "succeeded"
            ? { kind: "succeeded" as const, id: r.id, runSeq: r.runSeq, ...(result ? { result } : {}) }
            : { kind: "failed" as const, id: r.id, runSeq: r.runSeq, attempt: r.attempt, error: { name: "Error", message: "x" }, retryDelayMs: null },
        ),
      );
      return runs.map((r) => r.id);
    }

    it("stores a succeeded run's result and hands back the trace context and pickup times", async () => {
      const d = await fresh();
      const traceContext = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      const withResult = await d.taskInsert(task({ traceContext, delayMs: 5_000 }));
      const without = await d.taskInsert(task());
      d.clockShift(7_000);
      const runs = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 });
      const run = runs.find((r) => r.id === withResult);
      assert.ok(run);
      assert.equal(run.traceContext, traceContext);
      assert.equal(runs.find((r) => r.id === without)?.traceContext, null);
      // Due 5 s after the insert, claimed 7 s after it: picked up 2 s late.
      const late = (run.claimedAtMs ?? 0) - (run.runAtMs ?? 0);
      assert.ok(late >= 2_000 && late < 3_000, `picked up ${late} ms late`);
      const result = new Uint8Array([0x81, 0xa2, 0x6f, 0x6b, 0xc3]); // { ok: true }
      await d.taskCompleteMany(runs.map((r) => ({ kind: "succeeded" as const, id: r.id, runSeq: r.runSeq, ...(r.id === withResult ? { result } : {}) })));
      assert.deepEqual(await d.taskResultGet({ id: withResult }), { state: "succeeded", result });
      assert.deepEqual(await d.taskResultGet({ id: without }), { state: "succeeded", result: null });
      assert.equal((await d.taskGet(withResult))?.hasResult, true);
      assert.equal((await d.taskGet(without))?.hasResult, false);
      assert.equal(await d.taskResultGet({ id: "999999" }), null);
      assert.equal(await d.taskResultGet({ id: "nope" }), null);
    });

    it("holds a continuation until all its predecessors ended, whatever their outcome", async () => {
      const d = await fresh();
      const [a, b] = await d.taskInsertMany([task({ name: "A" }), task({ name: "B", delayMs: MINUTE })]);
      const child = await d.taskInsertContinuation(task({ name: "After" }), { taskIds: [a as string, b as string], onlyOnSuccess: false });
      assert.equal((await d.taskGet(child))?.waitingFor, 2);
      assert.deepEqual(await finish(d, "succeeded"), [a]); // the child is not claimable
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 0, consumed: 1 });
      assert.equal((await d.taskGet(child))?.waitingFor, 1);
      d.clockShift(MINUTE);
      assert.deepEqual(await finish(d, "dead"), [b]);
      const mark = await d.taskChangeMark();
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 1, canceled: 0, consumed: 1 });
      assert.notEqual(await d.taskChangeMark(), mark, "the release of a continuation moves the change mark");
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 0, consumed: 0 }); // each edge once
      const runs = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 1_000 });
      assert.deepEqual(
        runs.map((r) => r.name),
        ["After"],
      );
    });

    it("resolves in one pass of the continuer a continuation whose ended predecessors take several calls", async () => {
      const d = await fresh();
      const ids = await d.taskInsertMany(Array.from({ length: 250 }, (_, n) => task({ name: `P${n}` })));
      const child = await d.taskInsertContinuation(task({ name: "AfterAll" }), { taskIds: ids as string[], onlyOnSuccess: false });
      for (let i = 0; i < 3; i++) await finish(d, "succeeded");
      // 100 edges a call: two calls only count down, and the third releases.
      const continuer = new Continuer({ driver: d, logger: pino({ level: "silent" }), limit: 100 });
      assert.deepEqual(await continuer.runOnce(), { released: 1, canceled: 0 });
      assert.equal((await d.taskGet(child))?.waitingFor, 0);
    });

    it("cancels a success-only continuation when a predecessor did not succeed, or was deleted", async () => {
      const d = await fresh();
      const [a, b] = await d.taskInsertMany([task({ name: "A" }), task({ name: "B", delayMs: MINUTE })]);
      const onA = await d.taskInsertContinuation(task({ name: "OnA" }), { taskIds: [a as string], onlyOnSuccess: true });
      const onB = await d.taskInsertContinuation(task({ name: "OnB" }), { taskIds: [b as string], onlyOnSuccess: true });
      await finish(d, "dead");
      assert.equal(await d.taskDelete({ id: b as string }), true);
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 2, consumed: 2 });
      const [ta, tb] = [await d.taskGet(onA), await d.taskGet(onB)];
      assert.equal(ta?.state, "canceled");
      assert.equal(ta?.lastError?.name, "ContinuationCanceledError");
      assert.equal(ta?.lastError?.message, `task ${a} ended dead; this continuation runs only when it succeeds`);
      assert.equal(tb?.state, "canceled");
      assert.match(tb?.lastError?.message ?? "", new RegExp(`task ${b} was deleted`));
    });

    it("leaves nothing of a continuation whose transaction rolled back while it was being stored", async () => {
      const d = await fresh();
      const parent = await d.taskInsert(task({ name: "Parent" }));
      // Stored in several statements; the transaction rolls back while the first is on its way
      // (a task's thread stopped mid-call, or a call not awaited): what follows must not run
      // outside the transaction, committed on its own.
      for (let i = 0; i < 20; i++) {
        let storing: Promise<string> | null = null;
        await assert.rejects(
          d.transaction(async (tx) => {
            storing = d.taskInsertContinuation(task({ name: "Orphan" }), { taskIds: [parent], onlyOnSuccess: false }, tx);
            storing.catch(() => undefined);
            await new Promise((resolve) => setImmediate(resolve));
            throw new Error("rolled back");
          }),
          /rolled back/,
        );
        await (storing as Promise<string> | null)?.catch(() => undefined);
      }
      assert.deepEqual((await d.taskList({ name: "Orphan" })).items, []);
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 0, consumed: 0 });
    });

    it("keeps an ended predecessor from retention until its continuation has ended", async () => {
      const d = await fresh();
      const [a, b] = await d.taskInsertMany([task({ name: "A" }), task({ name: "B" })]);
      const onA = await d.taskInsertContinuation(task({ name: "OnA" }), { taskIds: [a as string], onlyOnSuccess: true });
      await finish(d, "succeeded");
      d.clockShift(MINUTE);
      // Both ended long enough ago; A's continuation has not been looked at yet.
      assert.equal(await d.taskDeleteFinished({ succeededAgeMs: 1_000, failedAgeMs: 1_000, limit: 100 }), 1);
      assert.equal((await d.taskGet(b as string)), null);
      assert.equal((await d.taskGet(a as string))?.state, "succeeded", "A is kept for its continuation");
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 1, canceled: 0, consumed: 1 });
      assert.equal((await d.taskGet(onA))?.state, "queued");
      assert.equal((await d.taskGet(onA))?.waitingFor, 0);
      // Resolved, but the continuation has not run: one may read its predecessors when it runs (a
      // process awaiting several tasks does, and its first may have ended days before the last).
      assert.equal(await d.taskDeleteFinished({ succeededAgeMs: 1_000, failedAgeMs: 1_000, limit: 100 }), 0);
      assert.equal((await d.taskGet(a as string))?.state, "succeeded", "A is kept while its continuation waits to run");
      assert.deepEqual(await finish(d, "succeeded"), [onA]);
      // The continuation ended: A goes at the next pass, the continuation after its own retention.
      assert.equal(await d.taskDeleteFinished({ succeededAgeMs: 1_000, failedAgeMs: 1_000, limit: 100 }), 1);
      assert.equal(await d.taskGet(a as string), null);
      d.clockShift(MINUTE);
      assert.equal(await d.taskDeleteFinished({ succeededAgeMs: 1_000, failedAgeMs: 1_000, limit: 100 }), 1);
      assert.equal(await d.taskGet(onA), null);
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 0, consumed: 0 });
    });

    it("releases a continuation of tasks that had already ended, and refuses unknown predecessors", async () => {
      const d = await fresh();
      const a = await d.taskInsert(task({ name: "A" }));
      await finish(d, "succeeded");
      const child = await d.taskInsertContinuation(task({ name: "Late" }), { taskIds: [a, a], onlyOnSuccess: true });
      assert.deepEqual((({ released, canceled }) => ({ released, canceled }))(await d.taskContinuationsResolve({ limit: 100 })), { released: 1, canceled: 0 });
      assert.equal((await d.taskGet(child))?.waitingFor, 0);
      assert.deepEqual(
        (await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 1_000 })).map((r) => r.id),
        [child],
      );
      await assert.rejects(
        d.taskInsertContinuation(task(), { taskIds: [a, "999999"], onlyOnSuccess: true }),
        /cannot continue after task 999999: no such task/,
      );
      await assert.rejects(d.taskInsertContinuation(task(), { taskIds: ["x"], onlyOnSuccess: true }), /predecessor must be a task id, got "x"/);
      assert.equal((await d.taskList({ name: "T" })).items.length, 0); // nothing of the refused ones stored
    });

    it("queues a canceled continuation again to wait for the predecessors that have not ended, by id and by filter", async () => {
      const d = await fresh();
      const [a, b] = (await d.taskInsertMany([task({ name: "A" }), task({ name: "B", delayMs: MINUTE })])) as [string, string];
      const one = await d.taskInsertContinuation(task({ name: "One" }), { taskIds: [a, b], onlyOnSuccess: false });
      const many = await d.taskInsertContinuation(task({ name: "Many" }), { taskIds: [a, b], onlyOnSuccess: false });
      assert.equal(await d.taskCancel({ id: one }), "queued");
      assert.equal(await d.taskCancel({ id: many }), "queued");
      assert.deepEqual(await finish(d, "succeeded"), [a]);
      await d.taskContinuationsResolve({ limit: 100 }); // consumes a's edges: the canceled ones are not counted down

      assert.equal(await d.taskRetry({ id: one }), true);
      assert.equal(await d.taskRetryMany({ states: ["canceled"], name: "Many", limit: 10 }), 1);
      for (const id of [one, many]) {
        const again = await d.taskGet(id);
        assert.equal(again?.state, "queued");
        assert.equal(again?.waitingFor, 1, "waits for b, which has not ended");
      }
      assert.deepEqual(await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 }), [], "neither runs before b ends");

      d.clockShift(MINUTE);
      assert.deepEqual(await finish(d, "succeeded"), [b]);
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 2, canceled: 0, consumed: 2 });
      assert.deepEqual((await finish(d, "succeeded")).sort(), [one, many].sort());

      // Once every predecessor has ended, a canceled continuation queued again runs at once.
      const c = await d.taskInsert(task({ name: "C" }));
      const late = await d.taskInsertContinuation(task({ name: "Late" }), { taskIds: [c], onlyOnSuccess: true });
      await d.taskCancel({ id: late });
      await finish(d, "dead");
      await d.taskContinuationsResolve({ limit: 100 });
      assert.equal(await d.taskRetry({ id: late }), true);
      assert.equal((await d.taskGet(late))?.waitingFor, 0);
      assert.deepEqual(await finish(d, "succeeded"), [late]);

      // Canceled by a predecessor that died while another still runs: a retry waits for that one.
      const [x, y] = (await d.taskInsertMany([task({ name: "X" }), task({ name: "Y", delayMs: MINUTE })])) as [string, string];
      const onBoth = await d.taskInsertContinuation(task({ name: "OnBoth" }), { taskIds: [x, y], onlyOnSuccess: true });
      await finish(d, "dead");
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 0, canceled: 1, consumed: 1 });
      assert.equal((await d.taskGet(onBoth))?.waitingFor, 1, "a canceled continuation still counts the predecessor that runs");
      assert.equal(await d.taskRetry({ id: onBoth }), true);
      assert.deepEqual(await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 }), []);
      d.clockShift(2 * MINUTE);
      assert.deepEqual(await finish(d, "succeeded"), [y]);
      assert.deepEqual(await d.taskContinuationsResolve({ limit: 100 }), { released: 1, canceled: 0, consumed: 1 });
      assert.deepEqual(await finish(d, "succeeded"), [onBoth]);
    });

    it("queues dead letters again by filter, in batches", async () => {
      const d = await fresh();
      await d.taskInsertMany([task({ name: "Mail" }), task({ name: "Mail" }), task({ name: "Mail", queue: "bulk" }), task({ name: "Bill" })]);
      await finish(d, "dead");
      assert.equal(await d.taskRetryMany({ name: "Mail", queue: "default", limit: 1 }), 1);
      assert.equal(await d.taskRetryMany({ name: "Mail", queue: "default", limit: 10 }), 1);
      assert.equal(await d.taskRetryMany({ name: "Mail", queue: "default", limit: 10 }), 0);
      const dead = (await d.taskList({ states: ["dead"] })).items;
      assert.deepEqual(dead.map((t) => `${t.name}/${t.queue}`).sort(), ["Bill/default", "Mail/bulk"]);
      const bill = dead.find((t) => t.name === "Bill");
      assert.equal(await d.taskRetryMany({ ids: [bill?.id ?? "", "nope"], limit: 10 }), 1);
      const again = await d.taskGet(bill?.id ?? "");
      assert.equal(again?.state, "queued");
      assert.equal(again?.maxAttempts, 3); // attempt 1 of 3 spent: attempts were left
      await assert.rejects(d.taskRetryMany({ states: ["succeeded"], limit: 1 }), /only failed, dead, canceled tasks can be queued again, not "succeeded"/);
      // Careless input is refused with the field named, before anything is queued again.
      const careless = (filter: unknown) => d.taskRetryMany(filter as Parameters<typeof d.taskRetryMany>[0]);
      await assert.rejects(careless({ name: {}, limit: 10 }), { name: "TypeError", message: /filter\.name must be a string, got an object/ });
      await assert.rejects(careless({ states: "dead", limit: 10 }), { name: "TypeError", message: /filter\.states must be an array/ });
      await assert.rejects(careless({ ids: "1", limit: 10 }), { name: "TypeError", message: /filter\.ids must be an array of task ids/ });
      await assert.rejects(careless({ ids: [1], limit: 10 }), { name: "TypeError", message: /filter\.ids\[0\] must be a string, got 1/ });
      await assert.rejects(careless({ ids: Array.from({ length: 10_001 }, () => "1"), limit: 10 }), { name: "RangeError", message: /at most 10000 at a time/ });
      await assert.rejects(careless({ limit: Number.NaN }), { name: "RangeError", message: /filter\.limit must be an integer >= 0, got NaN/ });
      assert.equal((await d.taskList({ states: ["dead"] })).items.length, 1, "nothing queued again by a refused filter");
    });

    it("reports queue depth and statistics", async () => {
      const d = await fresh();
      await d.taskInsertMany([task({ name: "A" }), task({ name: "A" }), task({ name: "B", queue: "q2" }), task({ name: "B", queue: "q2", delayMs: MINUTE })]);
      await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000, queues: ["q2"] });
      assert.deepEqual(
        (await d.taskQueueDepth()).map((q) => ({ ...q })),
        [
          { queue: "default", due: 2, later: 0, running: 0 },
          { queue: "q2", due: 0, later: 1, running: 1 },
        ],
      );
      await finish(d, "succeeded");
      const stats = await d.taskStats({ windowMs: 10 * MINUTE });
      assert.deepEqual(
        stats.counts.map((c) => `${c.name} ${c.state} ${c.count}`),
        ["A succeeded 2", "B queued 1", "B running 1"],
      );
      assert.deepEqual(
        stats.ended.map((e) => [e.state, e.count, e.minute % MINUTE, e.minute <= stats.now]),
        [["succeeded", 2, 0, true]],
      );
      d.clockShift(20 * MINUTE);
      assert.deepEqual((await d.taskStats({ windowMs: 10 * MINUTE })).ended, []);
    });

    it("gives a schedule's task a fair-share slot: tasks started while it waits do not go ahead of those waiting", async () => {
      const d = await fresh();
      const now = await d.clockNow();
      await d.taskInsertMany(Array.from({ length: 5 }, (_, i) => task({ name: `A${i + 1}`, initiator: { userId: "A" } })));
      assert.equal((await d.taskClaim({ workerId: "w", limit: 3, leaseMs: 60_000 })).length, 3);
      await d.taskInsert(task({ name: "B1", initiator: { userId: "B" } }));
      await d.scheduleUpsert({
        name: "tick",
        cron: "* * * * *",
        timeZone: "UTC",
        taskName: "Tick",
        parameters: new Uint8Array([0x80]),
        queue: "default",
        priority: 0,
        maxAttempts: 1,
        timeoutMs: 1_000,
        missed: "once",
        nextRunAtMs: now - 1_000,
      });
      const fired = await d.scheduleAdvance({ name: "tick", expectedNextRunAtMs: now - 1_000, nextRunAtMs: now + MINUTE, fireTickMs: now - 1_000 });
      assert.ok(fired.taskId);
      // A burst from another user, started while the scheduled task waits.
      await d.taskInsertMany(Array.from({ length: 3 }, (_, i) => task({ name: `C${i + 1}`, initiator: { userId: "C" } })));
      const order = (await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 })).map((c) => c.name);
      assert.deepEqual(order, ["A4", "B1", "Tick", "C1", "A5", "C2", "C3"], "C's burst went ahead of the tasks that were waiting");
    });

    it("advances a schedule by compare-and-set: one task per tick however many try", async () => {
      const d = await fresh();
      const now = await d.clockNow();
      const def = {
        name: "nightly",
        cron: "0 2 * * *",
        timeZone: "Europe/Berlin",
        taskName: "Report",
        parameters: new Uint8Array([0x80]),
        queue: "reports",
        priority: 2,
        maxAttempts: 4,
        timeoutMs: 1_000,
        missed: "once" as const,
        nextRunAtMs: now - 1_000,
      };
      await d.scheduleUpsert(def);
      const [listed] = await d.scheduleList();
      assert.equal(listed?.name, "nightly");
      assert.equal(listed?.timeZone, "Europe/Berlin");
      assert.equal(listed?.nextRunAt?.getTime(), now - 1_000);
      assert.equal(listed?.paused, false);
      assert.deepEqual(
        (await d.scheduleListDue({ atMs: now, limit: 10 })).map((s) => s.name),
        ["nightly"],
      );
      const advance = { name: "nightly", expectedNextRunAtMs: now - 1_000, nextRunAtMs: now + MINUTE, fireTickMs: now - 1_000 };
      const [first, second] = await Promise.all([d.scheduleAdvance(advance), d.scheduleAdvance(advance)]);
      assert.deepEqual([first?.advanced, second?.advanced].sort(), [false, true]);
      const taskId = first?.taskId ?? second?.taskId;
      assert.ok(taskId);
      const fired = await d.taskGet(taskId);
      assert.equal(fired?.name, "Report");
      assert.equal(fired?.queue, "reports");
      assert.equal(fired?.priority, 2);
      assert.equal(fired?.maxAttempts, 4);
      assert.equal(fired?.scheduleName, "nightly");
      assert.equal((await d.taskList({})).items.length, 1);
      const [after] = await d.scheduleList();
      assert.equal(after?.lastTick?.getTime(), now - 1_000);
      assert.equal(after?.lastTaskId, taskId);
      assert.deepEqual(await d.scheduleListDue({ atMs: now, limit: 10 }), []);
      // Skipping a tick moves it without a task.
      assert.deepEqual(
        await d.scheduleAdvance({ name: "nightly", expectedNextRunAtMs: now + MINUTE, nextRunAtMs: now + 2 * MINUTE, fireTickMs: null }),
        { advanced: true, taskId: null },
      );
      assert.equal((await d.taskList({})).items.length, 1);
      // The same definition keeps its next tick; a new cron takes the one given.
      await d.scheduleUpsert({ ...def, priority: 5, nextRunAtMs: now + 99 * MINUTE });
      assert.equal((await d.scheduleList())[0]?.nextRunAt?.getTime(), now + 2 * MINUTE);
      assert.equal((await d.scheduleList())[0]?.priority, 5);
      await d.scheduleUpsert({ ...def, cron: "0 3 * * *", nextRunAtMs: now + 99 * MINUTE });
      assert.equal((await d.scheduleList())[0]?.nextRunAt?.getTime(), now + 99 * MINUTE);
    });

    it("pauses, resumes and deletes schedules", async () => {
      const d = await fresh();
      const now = await d.clockNow();
      const def = {
        name: "hourly",
        cron: "0 * * * *",
        timeZone: "UTC",
        taskName: "T",
        parameters: new Uint8Array([0x80]),
        queue: "default",
        priority: 0,
        maxAttempts: 1,
        timeoutMs: 0,
        missed: "skip" as const,
        nextRunAtMs: now - 1,
      };
      await d.scheduleUpsert(def);
      assert.equal(await d.scheduleSetPaused({ name: "hourly", paused: true }), true);
      assert.deepEqual(await d.scheduleListDue({ atMs: now, limit: 10 }), []);
      // A paused schedule is not advanced, even by a node that read it before the pause.
      assert.equal((await d.scheduleAdvance({ name: "hourly", expectedNextRunAtMs: now - 1, nextRunAtMs: now + 1, fireTickMs: now - 1 })).advanced, false);
      await d.scheduleUpsert(def);
      assert.equal((await d.scheduleList())[0]?.paused, true); // a redefinition keeps the pause
      assert.equal(await d.scheduleSetPaused({ name: "hourly", paused: false, nextRunAtMs: now + MINUTE }), true);
      const [resumed] = await d.scheduleList();
      assert.equal(resumed?.paused, false);
      assert.equal(resumed?.nextRunAt?.getTime(), now + MINUTE);
      await d.scheduleSetPaused({ name: "hourly", paused: false, nextRunAtMs: null });
      assert.equal((await d.scheduleList())[0]?.nextRunAt, null); // never again
      assert.equal(await d.scheduleSetPaused({ name: "nope", paused: true }), false);
      assert.equal(await d.scheduleDelete({ name: "hourly" }), true);
      assert.equal(await d.scheduleDelete({ name: "hourly" }), false);
      assert.deepEqual(await d.scheduleList(), []);
    });
  });
}
