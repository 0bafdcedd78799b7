/**
 * The one driver test suite: every StorageDriver must pass it. A driver change extends it.
 * Time is moved with clockShift, never waited for.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { HAND_OFF_LOOKAHEAD, type ClaimedTask, type StorageDriver, type TaskInsertParams } from "../../src/store/driver.ts";
import { TASK_STATES, type TaskFilter, type TaskState } from "../../src/tasks/types.ts";

export interface DriverFactory {
  readonly name: string;
  /** A new, empty, not yet migrated store of its own. */
  create(): Promise<StorageDriver>;
}

const bytes = new Uint8Array([0x80]); // an empty MessagePack map

export function task(overrides: Partial<TaskInsertParams> = {}): TaskInsertParams {
  return {
    name: "T",
    queue: "default",
    priority: 0,
    parameters: bytes,
    maxAttempts: 3,
    timeoutMs: 0,
    initiator: null,
    withUserConnection: false,
    ...overrides,
  };
}

/** A rescue's counts, without the dead tasks' names. */
function counts(result: { retried: number; dead: number }): { retried: number; dead: number } {
  return { retried: result.retried, dead: result.dead };
}

/** Closes every store, all of them even when one fails to close (the first failure is thrown). */
export async function closeAll(drivers: readonly StorageDriver[]): Promise<void> {
  const results = await Promise.allSettled(drivers.map((d) => d.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

export function driverSuite(factory: DriverFactory): void {
  describe(`driver conformance: ${factory.name}`, () => {
    let driver: StorageDriver;
    const opened: StorageDriver[] = [];
    const fresh = async (): Promise<StorageDriver> => {
      const d = await factory.create();
      await d.migrate();
      opened.push(d);
      return d;
    };
    before(async () => {
      driver = await fresh();
    });
    // A test's own stores close when it ends: held until the suite's end, their connections would
    // add up (PostgreSQL allows 100 here, and another test file runs beside this one).
    afterEach(() => closeAll(opened.splice(0).filter((d) => d !== driver)));
    after(async () => {
      await driver.close();
    });

    it("migrates idempotently", async () => {
      await driver.migrate();
      await driver.migrate();
      await driver.ping();
    });

    it("tells whether the store exists and is current, creating nothing", async () => {
      const d = await factory.create();
      opened.push(d);
      assert.equal(await d.storeState?.(), "none");
      assert.equal(await d.storeState?.(), "none", "asking created the store");
      await d.migrate();
      assert.equal(await d.storeState?.(), "current");
      // A store whose last migration is not applied (an older underway's).
      await d.sqlQuery("DELETE FROM underway_migrations WHERE version = (SELECT max(version) FROM underway_migrations)", []);
      assert.equal(await d.storeState?.(), "behind");
      await d.migrate();
      assert.equal(await d.storeState?.(), "current");
      // One newer than this underway is refused, by name.
      await d.sqlQuery(`INSERT INTO underway_migrations (version, name, applied_at) VALUES (9999, 'future', ${d.dialect === "sqlite" ? "0" : "now()"})`, []);
      await assert.rejects(d.storeState?.() ?? Promise.reject(new Error("no storeState")), /is at schema version 9999, newer than this underway/);
    });

    it("inserts and reads back a task", async () => {
      const d = await fresh();
      const initiator = { userId: "u1", culture: "en-US", timeZone: "UTC" };
      const id = await d.taskInsert(task({ name: "Read", initiator, withUserConnection: true, priority: 3, timeoutMs: 10 }));
      const t = await d.taskGet(id);
      assert.ok(t);
      assert.equal(t.name, "Read");
      assert.equal(t.state, "queued");
      assert.equal(t.attempt, 0);
      assert.equal(t.priority, 3);
      assert.equal(t.timeoutMs, 10);
      assert.deepEqual(t.initiator, initiator);
      assert.equal(t.withUserConnection, true);
      assert.equal(await d.taskGet("999999"), null);
      assert.equal(await d.taskGet("not-an-id"), null);
      assert.equal(await d.taskGet("1; DROP TABLE underway_tasks"), null);
    });

    it("claims due tasks by priority, then in the order they were started, and never twice", async () => {
      const d = await fresh();
      const now = await d.clockNow();
      const low = await d.taskInsert(task({ priority: 0 }));
      const high = await d.taskInsert(task({ priority: 5 }));
      const backdated = await d.taskInsert(task({ priority: 0, runAtMs: now - 1_000 }));
      const later = await d.taskInsert(task({ priority: 0, delayMs: 60_000 }));
      const claimed = await d.taskClaim({ workerId: "w1", limit: 10, leaseMs: 1_000 });
      assert.deepEqual(
        claimed.map((c) => c.id),
        [high, low, backdated],
      );
      assert.ok(claimed.every((c) => c.attempt === 1 && c.runSeq === 1));
      assert.deepEqual(await d.taskClaim({ workerId: "w2", limit: 10, leaseMs: 1_000 }), []);
      assert.equal(await d.taskNextRunAt({}), (await d.taskGet(later))?.runAt.getTime());
      d.clockShift(60_000);
      assert.deepEqual(
        (await d.taskClaim({ workerId: "w2", limit: 10, leaseMs: 1_000 })).map((c) => c.id),
        [later],
      );
    });

    it("claims in batches up to the limit and by queue", async () => {
      const d = await fresh();
      await d.taskInsertMany(Array.from({ length: 5 }, () => task({ queue: "mail" })));
      await d.taskInsertMany(Array.from({ length: 5 }, () => task({ queue: "billing" })));
      assert.equal((await d.taskClaim({ workerId: "w", limit: 3, leaseMs: 1_000, queues: ["mail"] })).length, 3);
      const rest = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 1_000, queues: ["mail"] });
      assert.equal(rest.length, 2);
      assert.ok(rest.every((c) => c.queue === "mail"));
      assert.equal((await d.taskClaim({ workerId: "w", limit: 100, leaseMs: 1_000 })).length, 5);
    });

    it("records success, failure with retry, and dead", async () => {
      const d = await fresh();
      const [a, b, c] = await d.taskInsertMany([task(), task(), task()]);
      const claimed = await d.taskClaim({ workerId: "w", limit: 3, leaseMs: 1_000 });
      const ref = (id: string | undefined) => {
        const found = claimed.find((x) => x.id === id);
        assert.ok(found);
        return found;
      };
      const error = { name: "Error", message: "boom", stack: "Error: boom\n    at here" };
      const { rejected } = await d.taskCompleteMany([
        { kind: "succeeded", id: ref(a).id, runSeq: ref(a).runSeq },
        { kind: "failed", id: ref(b).id, runSeq: ref(b).runSeq, attempt: 1, error, retryDelayMs: 5_000 },
        { kind: "failed", id: ref(c).id, runSeq: ref(c).runSeq, attempt: 1, error, retryDelayMs: null },
      ]);
      assert.deepEqual(rejected, []);
      const [ta, tb, tc] = await Promise.all([a, b, c].map((id) => d.taskGet(id as string)));
      assert.equal(ta?.state, "succeeded");
      assert.ok(ta?.finishedAt);
      assert.equal(tb?.state, "failed");
      assert.equal(tb?.lastError?.message, "boom");
      assert.equal(tb?.errors.length, 1);
      assert.equal(tb?.errors[0]?.stack, error.stack);
      assert.equal((tb?.runAt.getTime() ?? 0) - (tb?.lastError?.at.getTime() ?? 0), 5_000);
      assert.equal(tc?.state, "dead");
      assert.deepEqual(await d.taskCountByState(), { queued: 0, running: 0, succeeded: 1, failed: 1, dead: 1, canceled: 0 });
      // The failed one is due after its delay only.
      assert.deepEqual(await d.taskClaim({ workerId: "w", limit: 5, leaseMs: 1_000 }), []);
      d.clockShift(5_000);
      const again = await d.taskClaim({ workerId: "w", limit: 5, leaseMs: 1_000 });
      assert.deepEqual(
        again.map((x) => [x.id, x.attempt, x.runSeq]),
        [[b, 2, 2]],
      );
    });

    it("rescues a running task that has no lease at all (a row changed by hand)", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ maxAttempts: 2 }));
      assert.equal((await d.taskClaim({ workerId: "ghost", limit: 1, leaseMs: 60_000 })).length, 1);
      const sql = d.dialect === "postgres" ? "UPDATE underway_tasks SET lease_expires_at = NULL WHERE id = $1" : "UPDATE underway_tasks SET lease_expires_at = NULL WHERE id = ?";
      await d.transaction((tx) => tx.execute(sql, [Number(id)]));
      assert.deepEqual(counts(await d.taskRescueExpired({ limit: 10 })), { retried: 1, dead: 0 });
      const rescued = await d.taskGet(id);
      assert.equal(rescued?.state, "failed");
      assert.equal(rescued?.lastError?.name, "LeaseExpiredError");
    });

    it("claims a task whose stored timeout a timer cannot wait (a row changed by hand) with the longest one it can", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({}));
      const sql = d.dialect === "postgres" ? "UPDATE underway_tasks SET timeout_ms = 3000000000 WHERE id = $1" : "UPDATE underway_tasks SET timeout_ms = 3000000000 WHERE id = ?";
      await d.transaction((tx) => tx.execute(sql, [Number(id)]));
      const [claimed] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.equal(claimed?.timeoutMs, 2_147_483_647);
    });

    it("rescues expired leases and fences the old run out", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ maxAttempts: 2 }));
      const [first] = await d.taskClaim({ workerId: "dead-worker", limit: 1, leaseMs: 10_000 });
      assert.ok(first);
      // Not expired yet: nothing to rescue.
      assert.deepEqual(counts(await d.taskRescueExpired({ limit: 10 })), { retried: 0, dead: 0 });
      d.clockShift(10_001);
      assert.deepEqual(counts(await d.taskRescueExpired({ limit: 10 })), { retried: 1, dead: 0 });
      const rescued = await d.taskGet(id);
      assert.equal(rescued?.state, "failed");
      assert.equal(rescued?.lastError?.name, "LeaseExpiredError");
      assert.match(rescued?.lastError?.message ?? "", /dead-worker stopped renewing its lease/);
      // The dead worker's heartbeat and late completion are refused.
      assert.deepEqual(await d.taskHeartbeat({ workerId: "dead-worker", leaseMs: 10_000, runs: [first] }), []);
      const [second] = await d.taskClaim({ workerId: "w2", limit: 1, leaseMs: 10_000 });
      assert.equal(second?.runSeq, 2);
      assert.equal(second?.attempt, 2);
      assert.deepEqual(
        (await d.taskCompleteMany([{ kind: "succeeded", id, runSeq: first.runSeq }])).rejected,
        [id],
      );
      assert.equal((await d.taskGet(id))?.state, "running");
      assert.deepEqual((await d.taskCompleteMany([{ kind: "succeeded", id, runSeq: 2 }])).rejected, []);
      // A terminal state never regresses: a repeated or stale report changes nothing.
      const error = { name: "Error", message: "late" };
      assert.deepEqual(
        (await d.taskCompleteMany([{ kind: "failed", id, runSeq: 2, attempt: 2, error, retryDelayMs: 0 }])).rejected,
        [id],
      );
      assert.deepEqual((await d.taskCompleteMany([{ kind: "released", id, runSeq: 2 }])).rejected, [id]);
      assert.equal((await d.taskGet(id))?.state, "succeeded");
    });

    it("records a batch of successes only for the runs that still hold their tasks, and names the others in order", async () => {
      const d = await fresh();
      const ids = await d.taskInsertMany(Array.from({ length: 6 }, () => task()));
      const runs = await d.taskClaim({ workerId: "w", limit: 6, leaseMs: 1_000 });
      assert.equal(runs.length, 6);
      const [r0, r1, r2, r3, r4, r5] = runs as [ClaimedTask, ClaimedTask, ClaimedTask, ClaimedTask, ClaimedTask, ClaimedTask];
      assert.equal(await d.taskCancel({ id: r2.id }), "running");
      const result = new Uint8Array([0xa2, 0x6f, 0x6b]);
      const { rejected } = await d.taskCompleteMany([
        { kind: "succeeded", id: r0.id, runSeq: r0.runSeq },
        { kind: "succeeded", id: r1.id, runSeq: r1.runSeq + 1 },
        { kind: "succeeded", id: r2.id, runSeq: r2.runSeq },
        { kind: "succeeded", id: r3.id, runSeq: r3.runSeq, result },
        { kind: "succeeded", id: r4.id, runSeq: r4.runSeq },
        { kind: "succeeded", id: "999999999", runSeq: 1 },
        { kind: "released", id: r5.id, runSeq: r5.runSeq },
      ]);
      // A stale run, a canceled task and a task that does not exist: refused, in the batch's order.
      assert.deepEqual(rejected, [r1.id, r2.id, "999999999"]);
      const states = await Promise.all(ids.map(async (id) => (await d.taskGet(id))?.state));
      const byId = new Map(ids.map((id, i) => [id, states[i]]));
      assert.deepEqual(
        [r0, r1, r2, r3, r4, r5].map((r) => byId.get(r.id)),
        ["succeeded", "running", "canceled", "succeeded", "succeeded", "queued"],
      );
      assert.ok((await d.taskGet(r0.id))?.finishedAt);
      assert.equal((await d.taskGet(r1.id))?.finishedAt, null);
      assert.equal((await d.taskGet(r3.id))?.hasResult, true);
      assert.equal((await d.taskGet(r0.id))?.hasResult, false);
      assert.deepEqual(await d.taskCountByState(), { queued: 1, running: 1, succeeded: 3, failed: 0, dead: 0, canceled: 1 });
      // Reported again, a batch changes nothing.
      const again = await d.taskCompleteMany([r0, r4].map((r) => ({ kind: "succeeded" as const, id: r.id, runSeq: r.runSeq })));
      assert.deepEqual(again.rejected, [r0.id, r4.id]);
    });

    it("makes a task dead when a lost lease spent its last attempt", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ maxAttempts: 1 }));
      await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      d.clockShift(1_001);
      const rescued = await d.taskRescueExpired({ limit: 10 });
      assert.deepEqual(counts(rescued), { retried: 0, dead: 1 });
      // The dead ones are named, for whoever follows ended tasks (process instances).
      assert.deepEqual(rescued.deadTasks, [{ id, name: "T", attempt: 1, message: "worker w stopped renewing its lease (it crashed, was killed or hung)" }]);
      assert.equal((await d.taskGet(id))?.state, "dead");
    });

    it("renews leases only for the runs a worker still holds", async () => {
      const d = await fresh();
      await d.taskInsertMany([task(), task()]);
      const runs = await d.taskClaim({ workerId: "w", limit: 2, leaseMs: 1_000 });
      d.clockShift(900);
      const held = await d.taskHeartbeat({ workerId: "w", leaseMs: 1_000, runs });
      assert.equal(held.length, 2);
      d.clockShift(900); // 1,800 ms after the claim, but renewed at 900
      assert.deepEqual(counts(await d.taskRescueExpired({ limit: 10 })), { retried: 0, dead: 0 });
      assert.deepEqual(await d.taskHeartbeat({ workerId: "other", leaseMs: 1_000, runs }), []);
    });

    it("releases an interrupted run without spending its attempt", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task());
      const [run] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      assert.ok(run);
      await d.taskCompleteMany([{ kind: "released", id, runSeq: run.runSeq }]);
      const t = await d.taskGet(id);
      assert.equal(t?.state, "queued");
      assert.equal(t?.attempt, 0);
      const [again] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      assert.equal(again?.attempt, 1);
      assert.equal(again?.runSeq, 2);
    });

    it("stores progress of the current run only", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task());
      const [run] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      assert.ok(run);
      await d.taskProgressSet({ id, runSeq: run.runSeq, progress: 0.5, message: "half" });
      await d.taskProgressSet({ id, runSeq: run.runSeq + 1, progress: 0.9, message: "stale" });
      const t = await d.taskGet(id);
      assert.equal(t?.progress, 0.5);
      assert.equal(t?.progressMessage, "half");
    });

    it("lists newest first with filters and keyset paging", async () => {
      const d = await fresh();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(await d.taskInsert(task({ name: i % 2 ? "Odd" : "Even", initiator: i < 2 ? { userId: "alice" } : null })));
      }
      const page1 = await d.taskList({ limit: 2 });
      assert.deepEqual(
        page1.items.map((t) => t.id),
        [ids[4], ids[3]],
      );
      assert.equal(page1.nextBeforeId, ids[3]);
      const page3 = await d.taskList({ limit: 2, beforeId: ids[1] });
      assert.deepEqual(
        page3.items.map((t) => t.id),
        [ids[0]],
      );
      assert.equal(page3.nextBeforeId, null);
      assert.deepEqual(
        (await d.taskList({ name: "Odd" })).items.map((t) => t.id),
        [ids[3], ids[1]],
      );
      assert.deepEqual(
        (await d.taskList({ userId: "alice" })).items.map((t) => t.id),
        [ids[1], ids[0]],
      );
      assert.equal((await d.taskList({ states: ["succeeded"] })).items.length, 0);
      assert.equal((await d.taskList({ name: "' OR 1=1 --" })).items.length, 0);
      await assert.rejects(d.taskList({ states: ["bogus" as never] }), /unknown task state "bogus"/);
      await assert.rejects(d.taskList({ beforeId: "x" }), /beforeId must be a task id/);
      // Careless input (from untyped callers) is refused with the field named, never a driver error.
      const careless = (filter: unknown) => d.taskList(filter as TaskFilter);
      await assert.rejects(careless({ limit: Number.NaN }), { name: "TypeError", message: /filter\.limit must be a number .*got NaN/ });
      await assert.rejects(careless({ limit: "10" }), { name: "TypeError", message: /filter\.limit must be a number/ });
      await assert.rejects(careless({ states: "queued" }), { name: "TypeError", message: /filter\.states must be an array of task states .*got "queued"/ });
      await assert.rejects(careless({ states: ["queued", 3] }), { name: "RangeError", message: /filter\.states\[1\]: unknown task state 3/ });
      await assert.rejects(careless({ name: 7 }), { name: "TypeError", message: /filter\.name must be a string, got 7/ });
      await assert.rejects(careless({ userId: { $ne: "" } }), { name: "TypeError", message: /filter\.userId must be a string, got an object/ });
      await assert.rejects(careless({ beforeId: 5 }), /filter\.beforeId must be a task id, got 5/);
      await assert.rejects(careless("queued"), { name: "TypeError", message: /the task filter must be an object/ });
      // A limit outside 1 to 1,000 is brought within it, as documented.
      assert.equal((await d.taskList({ limit: 0 })).items.length, 1);
      assert.equal((await d.taskList({ limit: 2.9 })).items.length, 2);
      assert.equal((await d.taskList({ limit: Number.POSITIVE_INFINITY })).items.length, ids.length);
    });

    it("counts, lists and measures queues by state, every state alike", async () => {
      const d = await fresh();
      const inserted = await d.taskInsertMany(Array.from({ length: 10 }, (_, i) => task({ queue: i % 2 ? "mail" : "default" })));
      const claimed = (await d.taskClaim({ workerId: "w", limit: 8, leaseMs: 60_000 })).sort((x, y) => Number(x.id) - Number(y.id));
      assert.equal(claimed.length, 8);
      const run = (i: number): ClaimedTask => claimed[i] as ClaimedTask;
      const error = { name: "Error", message: "boom" };
      await d.taskCompleteMany([
        { kind: "succeeded", id: run(0).id, runSeq: run(0).runSeq },
        { kind: "succeeded", id: run(1).id, runSeq: run(1).runSeq },
        { kind: "failed", id: run(2).id, runSeq: run(2).runSeq, attempt: 1, error, retryDelayMs: 60_000 },
        { kind: "failed", id: run(3).id, runSeq: run(3).runSeq, attempt: 1, error, retryDelayMs: 60_000 },
        { kind: "failed", id: run(4).id, runSeq: run(4).runSeq, attempt: 1, error, retryDelayMs: null },
        { kind: "failed", id: run(5).id, runSeq: run(5).runSeq, attempt: 1, error, retryDelayMs: null },
      ]);
      const canceled = await d.taskInsertMany([task(), task({ queue: "mail" })]);
      for (const id of canceled) assert.equal(await d.taskCancel({ id }), "queued");
      const byId = (a: string, b: string): number => Number(b) - Number(a);
      const expected: Record<TaskState, string[]> = {
        queued: inserted.filter((id) => !claimed.some((c) => c.id === id)),
        running: [run(6).id, run(7).id],
        succeeded: [run(0).id, run(1).id],
        failed: [run(2).id, run(3).id],
        dead: [run(4).id, run(5).id],
        canceled,
      };
      const two = { queued: 2, running: 2, succeeded: 2, failed: 2, dead: 2, canceled: 2 };
      assert.deepEqual(await d.taskCountByState(), two);
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 10 }), two);
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 1 }), { queued: 1, running: 1, succeeded: 1, failed: 1, dead: 1, canceled: 1 });
      for (const state of TASK_STATES) {
        const listed = (await d.taskList({ states: [state] })).items;
        assert.deepEqual(listed.map((t) => t.id), [...expected[state]].sort(byId), `the ${state} tasks, newest first`);
        assert.ok(listed.every((t) => t.state === state));
        const page = await d.taskList({ states: [state], limit: 1 });
        assert.deepEqual([page.items[0]?.id, page.nextBeforeId], [[...expected[state]].sort(byId)[0], [...expected[state]].sort(byId)[0]]);
      }
      assert.deepEqual(
        (await d.taskList({ states: ["running", "dead", "queued"] })).items.map((t) => t.id),
        [...expected.running, ...expected.dead, ...expected.queued].sort(byId),
      );
      // Each queue: one queued and due, one failed that waits for its retry, one running.
      assert.deepEqual(await d.taskQueueDepth(), [
        { queue: "default", due: 1, later: 1, running: 1 },
        { queue: "mail", due: 1, later: 1, running: 1 },
      ]);
      // A backlog: a store may read a long queue differently from a short one.
      const backlog = await d.taskInsertMany(Array.from({ length: 1_200 }, () => task()));
      const newest = [...backlog].sort(byId).slice(0, 3);
      assert.deepEqual((await d.taskList({ states: ["queued"], limit: 3 })).items.map((t) => t.id), newest);
      assert.deepEqual((await d.taskList({ states: ["queued"], limit: 2, beforeId: newest[0] })).items.map((t) => t.id), newest.slice(1, 3));
      assert.equal((await d.taskCountByStateUpTo({ cap: 10_000 })).queued, 1_202);
      assert.equal((await d.taskCountByState()).queued, 1_202);
    });

    it("joins an enqueue to a transaction: rollback leaves no task, commit keeps it", async () => {
      const d = await fresh();
      await assert.rejects(
        d.transaction(async (tx) => {
          await d.taskInsert(task({ name: "RolledBack" }), tx);
          throw new Error("business rule failed");
        }),
        /business rule failed/,
      );
      assert.equal((await d.taskList({ name: "RolledBack" })).items.length, 0);
      const id = await d.transaction(async (tx) => d.taskInsert(task({ name: "Committed" }), tx));
      assert.equal((await d.taskGet(id))?.name, "Committed");
      // A transaction that has ended cannot be used any more.
      let leaked: Parameters<Parameters<StorageDriver["transaction"]>[0]>[0] | null = null;
      await d.transaction(async (tx) => {
        leaked = tx;
      });
      await assert.rejects(d.taskInsert(task(), leaked ?? undefined), /not open on this store/);
    });

    it("elects one leader per name; another takes over when the term expires or on resign", async () => {
      const d = await fresh();
      const elect = (holderId: string) => d.leaderAttemptElect({ name: "maintenance", holderId, ttlMs: 10_000 });
      assert.equal(await elect("a"), true);
      assert.equal(await elect("b"), false);
      assert.equal(await d.leaderAttemptElect({ name: "other", holderId: "b", ttlMs: 10_000 }), true);
      d.clockShift(9_000);
      assert.equal(await elect("a"), true); // renewed until 19,000
      d.clockShift(9_000);
      assert.equal(await elect("b"), false);
      d.clockShift(1_001);
      assert.equal(await elect("b"), true); // a's term passed
      assert.equal(await elect("a"), false);
      await d.leaderResign({ name: "maintenance", holderId: "a" }); // not the holder: no effect
      assert.equal(await elect("a"), false);
      await d.leaderResign({ name: "maintenance", holderId: "b" });
      assert.equal(await elect("a"), true);
    });

    it("cancels tasks that have not ended; a canceled run is no longer held", async () => {
      const d = await fresh();
      const [queued, running, done] = await d.taskInsertMany([task(), task(), task()]);
      const claimed = await d.taskClaim({ workerId: "w", limit: 2, leaseMs: 10_000 });
      const runRef = claimed.find((c) => c.id === running) ?? claimed[1];
      const doneRef = claimed.find((c) => c.id !== runRef?.id);
      assert.ok(runRef && doneRef);
      await d.taskCompleteMany([{ kind: "succeeded", id: doneRef.id, runSeq: doneRef.runSeq }]);
      const ended = doneRef.id;
      const stillQueued = [queued, running, done].find((id) => !claimed.some((c) => c.id === id)) as string;
      assert.equal(await d.taskCancel({ id: stillQueued }), "queued");
      assert.equal(await d.taskCancel({ id: runRef.id }), "running");
      assert.equal(await d.taskCancel({ id: ended }), null);
      assert.equal(await d.taskCancel({ id: "999999" }), null);
      assert.equal(await d.taskCancel({ id: "x'; --" }), null);
      assert.equal((await d.taskGet(stillQueued))?.state, "canceled");
      assert.deepEqual(await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 1_000 }), []);
      // Still leased until the run has ended (see "keeps a task canceled while it ran ..."): its worker learns it was canceled.
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w", leaseMs: 10_000, runs: [runRef] }), [{ id: runRef.id, runSeq: runRef.runSeq, canceled: true }]);
      assert.deepEqual((await d.taskCompleteMany([{ kind: "succeeded", id: runRef.id, runSeq: runRef.runSeq }])).rejected, [runRef.id]);
      assert.equal((await d.taskGet(runRef.id))?.state, "canceled");
    });

    it("queues ended tasks again on retry, with an attempt to spare", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ maxAttempts: 1 }));
      const [run] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      assert.ok(run);
      await d.taskCompleteMany([{ kind: "failed", id, runSeq: run.runSeq, attempt: 1, error: { name: "Error", message: "x" }, retryDelayMs: null }]);
      assert.equal((await d.taskGet(id))?.state, "dead");
      assert.equal(await d.taskRetry({ id }), true);
      const again = await d.taskGet(id);
      assert.equal(again?.state, "queued");
      assert.equal(again?.maxAttempts, 2);
      assert.equal(await d.taskRetry({ id }), false); // already queued
      const [second] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
      assert.equal(second?.attempt, 2);
    });

    it("deletes tasks that are not running, and ended ones after their retention", async () => {
      const d = await fresh();
      const [a, b, c, e] = await d.taskInsertMany([task(), task(), task(), task()]);
      const runs = await d.taskClaim({ workerId: "w", limit: 3, leaseMs: 60_000 });
      const ref = (id: string | undefined) => runs.find((r) => r.id === id) as (typeof runs)[number];
      assert.equal(await d.taskDelete({ id: a as string }), false); // running
      await d.taskCompleteMany([
        { kind: "succeeded", id: a as string, runSeq: ref(a).runSeq },
        { kind: "failed", id: b as string, runSeq: ref(b).runSeq, attempt: 1, error: { name: "E", message: "m" }, retryDelayMs: null },
      ]);
      await d.taskCancel({ id: c as string });
      assert.equal(await d.taskDelete({ id: e as string }), true);
      assert.equal(await d.taskGet(e as string), null);
      const retention = { succeededAgeMs: 60_000, failedAgeMs: 600_000, limit: 100 };
      assert.equal(await d.taskDeleteFinished(retention), 0);
      d.clockShift(60_001);
      assert.equal(await d.taskDeleteFinished(retention), 1); // the succeeded one
      assert.equal(await d.taskGet(a as string), null);
      d.clockShift(600_000);
      assert.equal(await d.taskDeleteFinished(retention), 2); // dead and canceled, kept longer
      assert.equal((await d.taskList({})).items.length, 0);
    });

    it("never gives a deleted task's id to another task, whichever way it is stored", async () => {
      const d = await fresh();
      const given = new Set<string>();
      const fresher = (id: string | undefined, how: string): void => {
        assert.ok(id !== undefined && !given.has(id), `${how} gave id ${String(id)} again`);
        given.add(id);
      };
      const newest = async (): Promise<string> => {
        const id = await d.taskInsert(task());
        fresher(id, "an insert");
        return id;
      };
      // The newest task deleted, by id: the next insert, one of many, and a hand-off.
      assert.equal(await d.taskDelete({ id: await newest() }), true);
      fresher(await d.taskInsert(task()), "an insert after a delete");
      await d.taskDelete({ id: await newest() });
      for (const id of await d.taskInsertMany([task(), task()])) fresher(id, "an insert of many after a delete");
      await d.taskDelete({ id: await newest() });
      const handOff = await d.taskInsertClaimed?.(task(), { workerId: "w", leaseMs: 60_000 });
      if (handOff) fresher(handOff.id, "a hand-off after a delete");
      // Retention emptying the table.
      const runs = await d.taskClaim({ workerId: "w", limit: 100, leaseMs: 60_000 });
      if (handOff?.claimed) runs.push(handOff.claimed);
      await d.taskCompleteMany(runs.map((t) => ({ kind: "succeeded" as const, id: t.id, runSeq: t.runSeq })));
      d.clockShift(3_600_000);
      await d.taskDeleteFinished({ succeededAgeMs: 1, failedAgeMs: 1, limit: 1_000 });
      assert.equal((await d.taskList({})).items.length, 0, "retention emptied the store");
      fresher(await d.taskInsert(task()), "an insert into the emptied store");
    });

    it("keeps a task canceled while it ran from a retry, a delete and retention until that run ended", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ name: "Stubborn" }));
      const other = await d.taskInsert(task({ name: "Other" }));
      const runs = await d.taskClaim({ workerId: "w", limit: 2, leaseMs: 60_000 });
      const run = runs.find((r) => r.id === id);
      assert.ok(run);
      const ref = { id, runSeq: run.runSeq };
      assert.equal(await d.taskCancel({ id }), "running");
      assert.equal((await d.taskGet(id))?.stopping, true);
      assert.equal((await d.taskList({ states: ["canceled"] })).items[0]?.stopping, true);
      assert.equal(await d.taskRetry({ id }), false, "retried while its run may still run");
      assert.equal(await d.taskRetryMany({ states: ["canceled"], limit: 10 }), 0);
      assert.equal(await d.taskDelete({ id }), false, "deleted while its run may still run");
      d.clockShift(10);
      assert.equal(await d.taskDeleteFinished({ succeededAgeMs: 1, failedAgeMs: 1, limit: 10 }), 0);
      // Its worker keeps the lease while the run goes on, and learns that the task was canceled.
      const otherRef = { id: other, runSeq: runs.find((r) => r.id === other)?.runSeq ?? -1 };
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w", leaseMs: 60_000, runs: [ref, otherRef] }), [{ ...ref, canceled: true }, otherRef]);
      assert.deepEqual(await d.taskHeartbeat({ workerId: "someone else", leaseMs: 60_000, runs: [ref] }), []);
      // Letting go of a run whose task is not canceled changes nothing.
      await d.taskCanceledRunsEnded([otherRef, { id: "999999", runSeq: 1 }, { id: "not-an-id", runSeq: 1 }]);
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w", leaseMs: 60_000, runs: [otherRef] }), [otherRef]);
      const mark = await d.taskChangeMark();
      await d.taskCanceledRunsEnded([ref]);
      assert.notEqual(await d.taskChangeMark(), mark, "pages see the change");
      assert.equal((await d.taskGet(id))?.stopping, false);
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w", leaseMs: 60_000, runs: [ref] }), [], "the lease was let go");
      assert.equal(await d.taskRetry({ id }), true);
      assert.equal((await d.taskGet(id))?.state, "queued");
    });

    it("lets a task canceled while it ran be retried once that run's lease ran out (its worker is gone)", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ name: "Orphaned" }));
      await d.taskClaim({ workerId: "gone", limit: 1, leaseMs: 60_000 });
      assert.equal(await d.taskCancel({ id }), "running");
      assert.equal(await d.taskDelete({ id }), false);
      d.clockShift(60_001);
      assert.equal((await d.taskGet(id))?.stopping, false);
      assert.equal(await d.taskRescueExpired({ limit: 10 }).then((r) => r.retried + r.dead), 0, "a canceled task is not rescued");
      assert.equal(await d.taskDelete({ id }), true);
      // A queued task canceled has no run to wait for.
      const queued = await d.taskInsert(task());
      assert.equal(await d.taskCancel({ id: queued }), "queued");
      assert.equal((await d.taskGet(queued))?.stopping, false);
      assert.equal(await d.taskRetry({ id: queued }), true);
    });

    it("joins a transaction started inside another, and runs calls made inside it in it", async () => {
      const d = await fresh();
      await assert.rejects(
        d.transaction(async (tx) => {
          const id = await d.transaction(async (inner) => {
            assert.equal(inner, tx);
            return d.taskInsert(task({ name: "Nested" }), inner);
          });
          assert.equal((await d.taskGet(id))?.name, "Nested");
          throw new Error("undo");
        }),
        /undo/,
      );
      assert.equal((await d.taskList({ name: "Nested" })).items.length, 0);
    });

    it("closes idempotently; later calls fail clearly", async () => {
      const d = await factory.create();
      await d.migrate();
      await d.close();
      await d.close();
      await assert.rejects(d.ping(), /is closed/);
      await assert.rejects(d.taskInsert(task()), /is closed/);
    });

    it("rejects outcomes and heartbeats of ids that are not ids", async () => {
      const d = await fresh();
      const { rejected } = await d.taskCompleteMany([
        { kind: "succeeded", id: "x", runSeq: 1 },
        { kind: "succeeded", id: "999999", runSeq: 1 },
      ]);
      assert.deepEqual(rejected, ["x", "999999"]);
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w", leaseMs: 1_000, runs: [{ id: "x", runSeq: 1 }] }), []);
    });

    // --- The web application's task centre queries. ---

    it("reads a task's encoded parameters", async () => {
      const d = await fresh();
      const parameters = new Uint8Array([0x81, 0xa1, 0x61, 0x01]); // { a: 1 }
      const id = await d.taskInsert(task({ parameters }));
      assert.deepEqual(await d.taskParametersGet(id), parameters);
      assert.equal(await d.taskParametersGet("999999"), null);
      assert.equal(await d.taskParametersGet("nope"), null);
    });

    it("counts tasks per state up to a cap, for everyone or one user", async () => {
      const d = await fresh();
      const alice = { userId: "alice" };
      for (let i = 0; i < 4; i++) await d.taskInsert(task({ initiator: alice, withUserConnection: true }));
      await d.taskInsert(task());
      await d.taskInsert(task({ name: "Other", priority: 9 }));
      await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 }); // the priority 9 one
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 100 }), { queued: 5, running: 1, succeeded: 0, failed: 0, dead: 0, canceled: 0 });
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 3 }), { queued: 3, running: 1, succeeded: 0, failed: 0, dead: 0, canceled: 0 });
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 100, userId: "alice" }), { queued: 4, running: 0, succeeded: 0, failed: 0, dead: 0, canceled: 0 });
      assert.deepEqual(await d.taskCountByStateUpTo({ cap: 100, userId: "nobody" }), { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0, canceled: 0 });
      await assert.rejects(d.taskCountByStateUpTo({ cap: 0 }), /cap must be/);
    });

    it("moves its change mark on insert, state change and progress, and not otherwise", async () => {
      const d = await fresh();
      const empty = await d.taskChangeMark();
      assert.equal(await d.taskChangeMark(), empty);
      const id = await d.taskInsert(task());
      const inserted = await d.taskChangeMark();
      assert.notEqual(inserted, empty);
      d.clockShift(5);
      const [claimed] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.ok(claimed);
      const running = await d.taskChangeMark();
      assert.notEqual(running, inserted);
      assert.equal(await d.taskChangeMark(), running);
      await d.taskProgressSet({ id, runSeq: claimed.runSeq, progress: 0.5, message: "half" });
      const progressed = await d.taskChangeMark();
      assert.notEqual(progressed, running);
      d.clockShift(5);
      await d.taskCompleteMany([{ kind: "succeeded", id, runSeq: claimed.runSeq }]);
      const ended = await d.taskChangeMark();
      assert.notEqual(ended, progressed);
      assert.equal(await d.taskChangeMark(), ended);
    });

    it("moves its change mark when one run ends and another starts between two reads", async () => {
      const d = await fresh();
      const [a, b] = await d.taskInsertMany([task({ name: "A", priority: 1 }), task({ name: "B" })]);
      const [first] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.ok(first);
      assert.equal(first.id, a);
      const before = await d.taskChangeMark();
      // As many tasks run afterwards, the newest id is the same, and the clock has not moved.
      await d.taskCompleteMany([{ kind: "succeeded", id: first.id, runSeq: first.runSeq }]);
      const [second] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.equal(second?.id, b);
      assert.notEqual(await d.taskChangeMark(), before);
    });

    it("moves its change mark on release, failure, retry, cancel and delete, and not on a heartbeat", async () => {
      const d = await fresh();
      const id = await d.taskInsert(task({ maxAttempts: 1 }));
      const newest = await d.taskInsert(task({ name: "Newest", priority: -1 }));
      const moves = async (what: string, change: () => Promise<unknown>): Promise<void> => {
        const before = await d.taskChangeMark();
        d.clockShift(5);
        await change();
        assert.notEqual(await d.taskChangeMark(), before, what);
      };
      const claim = async (): Promise<number> => {
        const [run] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 });
        assert.equal(run?.id, id);
        return run.runSeq;
      };
      let runSeq = await claim();
      const running = await d.taskChangeMark();
      d.clockShift(5);
      await d.taskHeartbeat({ workerId: "w", leaseMs: 60_000, runs: [{ id, runSeq }] });
      assert.equal(await d.taskChangeMark(), running, "a heartbeat");
      await moves("a release", () => d.taskCompleteMany([{ kind: "released", id, runSeq }]));
      runSeq = await claim();
      await moves("a final failure", () =>
        d.taskCompleteMany([{ kind: "failed", id, runSeq, attempt: 1, error: { name: "Error", message: "boom" }, retryDelayMs: null }]),
      );
      await moves("a retry", () => d.taskRetry({ id }));
      runSeq = await claim();
      await d.taskCompleteMany([{ kind: "failed", id, runSeq, attempt: 1, error: { name: "Error", message: "boom" }, retryDelayMs: null }]);
      await moves("a retry of many", async () => assert.equal(await d.taskRetryMany({ states: ["dead"], limit: 10 }), 1));
      await moves("a cancel", () => d.taskCancel({ id }));
      await moves("a cancel of the newest", () => d.taskCancel({ id: newest }));
      // Neither the newest task nor the latest changed one goes.
      await moves("a delete", () => d.taskDelete({ id }));
      const after = await d.taskChangeMark();
      assert.equal(await d.taskDelete({ id }), false);
      assert.equal(await d.taskChangeMark(), after, "a delete of nothing");
    });

    it("buckets successes and failed attempts of the last window, for everyone or one user", async () => {
      const d = await fresh();
      const ok = await d.taskInsert(task({ initiator: { userId: "alice" }, withUserConnection: true }));
      const bad = await d.taskInsert(task({ maxAttempts: 1 }));
      const runs = await d.taskClaim({ workerId: "w", limit: 2, leaseMs: 60_000 });
      const seq = (id: string): number => runs.find((r) => r.id === id)?.runSeq ?? -1;
      await d.taskCompleteMany([
        { kind: "succeeded", id: ok, runSeq: seq(ok) },
        { kind: "failed", id: bad, runSeq: seq(bad), attempt: 1, error: { name: "Error", message: "boom" }, retryDelayMs: null },
      ]);
      const all = await d.taskActivityBuckets({ windowMs: 3_600_000, bucketMs: 60_000 });
      assert.equal(all.succeeded.length, 60);
      assert.equal(all.failed.length, 60);
      assert.equal(all.bucketMs, 60_000);
      // Everything happened just now: in the newest bucket.
      assert.equal(all.succeeded[59], 1);
      assert.equal(all.failed[59], 1);
      assert.equal(all.succeeded.reduce((a, b) => a + b, 0), 1);
      assert.ok(all.fromMs <= (await d.clockNow()) && (await d.clockNow()) < all.fromMs + 60 * 60_000);
      const alices = await d.taskActivityBuckets({ windowMs: 3_600_000, bucketMs: 60_000, userId: "alice" });
      assert.deepEqual([alices.succeeded[59], alices.failed.reduce((a, b) => a + b, 0)], [1, 0]);
      // Two hours later, the last hour saw nothing.
      d.clockShift(2 * 3_600_000);
      const later = await d.taskActivityBuckets({ windowMs: 3_600_000, bucketMs: 60_000 });
      assert.deepEqual([later.succeeded.reduce((a, b) => a + b, 0), later.failed.reduce((a, b) => a + b, 0)], [0, 0]);
      await assert.rejects(d.taskActivityBuckets({ windowMs: 3_600_000, bucketMs: 10 }), /bucketMs/);
    });

    it("interleaves users fairly: a user's new tasks never wait behind another user's backlog", async () => {
      const d = await fresh();
      const a = { userId: "A" };
      const b = { userId: "B" };
      await d.taskInsertMany(Array.from({ length: 50 }, () => task({ name: "A", initiator: a })));
      await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 });
      await d.taskInsert(task({ name: "B", initiator: b }));
      await d.taskInsertMany([task({ name: "B", initiator: b }), task({ name: "B", initiator: b })]);
      await d.taskInsert(task({ name: "anonymous" }));
      const next = (await d.taskClaim({ workerId: "w", limit: 8, leaseMs: 60_000 })).map((c) => c.name);
      assert.deepEqual(next, ["A", "B", "anonymous", "A", "B", "A", "B", "A"]);
      // Priority still comes first.
      const urgent = await d.taskInsert(task({ name: "A", initiator: a, priority: 1 }));
      assert.equal((await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 60_000 }))[0]?.id, urgent);
    });

    it("slots each user's tasks of one bulk insert after that user's own waiting ones", async () => {
      const d = await fresh();
      const a = { userId: "A" };
      const b = { userId: "B" };
      await d.taskInsertMany(Array.from({ length: 4 }, (_, i) => task({ name: `A${i + 1}`, initiator: a })));
      await d.taskInsertMany([
        task({ name: "A5", initiator: a }),
        task({ name: "B1", initiator: b }),
        task({ name: "A6", initiator: a }),
        task({ name: "B2", initiator: b }),
        task({ name: "B3", initiator: b }),
      ]);
      const order = (await d.taskClaim({ workerId: "w", limit: 9, leaseMs: 60_000 })).map((c) => c.name);
      assert.deepEqual(order, ["A1", "B1", "A2", "B2", "A3", "B3", "A4", "A5", "A6"]);
    });

    for (const bulk of [false, true]) {
      it(`places a new user's task after the head of its own priority, whatever waits at another priority (${bulk ? "one bulk insert" : "single inserts"})`, async () => {
        const d = await fresh();
        // Waiting at priority 10 with the smallest slot, but not due for a minute.
        await d.taskInsert(task({ name: "Z", priority: 10, delayMs: 60_000, initiator: { userId: "Z" } }));
        await d.taskInsertMany(Array.from({ length: 4 }, (_, i) => task({ name: `A${i + 1}`, initiator: { userId: "A" } })));
        assert.deepEqual((await d.taskClaim({ workerId: "w", limit: 2, leaseMs: 60_000 })).map((c) => c.name), ["A1", "A2"]);
        const newcomers = [task({ name: "B1", initiator: { userId: "B" } }), task({ name: "D1", initiator: { userId: "D" } })];
        if (bulk) await d.taskInsertMany(newcomers);
        else for (const t of newcomers) await d.taskInsert(t);
        const order = (await d.taskClaim({ workerId: "w", limit: 4, leaseMs: 60_000 })).map((c) => c.name);
        assert.deepEqual(order, ["A3", "B1", "D1", "A4"], "B and D take their turns among A's waiting tasks, not the delayed Z's place");
      });
    }

    for (const bulk of [false, true]) {
      it(`does not let a user's tasks at one priority push back their task at another (${bulk ? "one bulk insert" : "single inserts"})`, async () => {
        const d = await fresh();
        await d.taskInsertMany(Array.from({ length: 10 }, (_, i) => task({ name: `A${i + 1}`, initiator: { userId: "A" } })));
        // U's task at priority 10 takes a slot far ahead of priority 0's head (nothing else waits
        // there: the newest task's slot); then C and U start one task each at priority 0.
        const later = [
          task({ name: "U10", priority: 10, initiator: { userId: "U" } }),
          task({ name: "C0", initiator: { userId: "C" } }),
          task({ name: "U0", initiator: { userId: "U" } }),
        ];
        if (bulk) await d.taskInsertMany(later);
        else for (const t of later) await d.taskInsert(t);
        const order = (await d.taskClaim({ workerId: "w", limit: 5, leaseMs: 60_000 })).map((c) => c.name);
        assert.deepEqual(order, ["U10", "A1", "C0", "U0", "A2"], "U's priority-0 task takes its turn beside C's");
      });
    }

    it("keeps one waiting or running task per deduplication key; a key held until start is freed by the claim", async () => {
      const d = await fresh();
      const first = await d.taskInsert(task({ dedupKey: "k" }));
      assert.equal(await d.taskInsert(task({ dedupKey: "k" })), first);
      const [claimed] = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 });
      assert.equal(claimed?.id, first);
      assert.equal(await d.taskInsert(task({ dedupKey: "k" })), first, "held while running");
      await d.taskCompleteMany([{ kind: "succeeded", id: first, runSeq: 1 }]);
      const second = await d.taskInsert(task({ dedupKey: "k" }));
      assert.notEqual(second, first, "free once ended");
      await d.taskCancel({ id: second });

      const early = await d.taskInsert(task({ dedupKey: "s", dedupUntilStart: true }));
      assert.equal(await d.taskInsert(task({ dedupKey: "s", dedupUntilStart: true })), early);
      await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 });
      assert.notEqual(await d.taskInsert(task({ dedupKey: "s", dedupUntilStart: true })), early, "freed when it started");
      // A retried task gives up its key rather than clash with the one holding it now.
      assert.equal(await d.taskRetry({ id: second }), true);
      assert.notEqual(await d.taskInsert(task({ dedupKey: "k" })), second);
      await assert.rejects(d.taskInsertMany([task({ dedupKey: "x" }), task({ dedupKey: "x" })]), /deduplication keys are for single inserts/);
    });

    it("hands a task to a worker as it stores it when nothing else is due, as a claim would", async (t) => {
      const d = await fresh();
      if (!d.taskInsertClaimed) return t.skip("the driver stores and claims separately");
      await d.taskInsert(task({ name: "Running" }));
      assert.equal((await d.taskClaim({ workerId: "w0", limit: 10, leaseMs: 60_000 })).length, 1);
      const later = await d.taskInsert(task({ name: "Later", delayMs: 60_000 }));
      const initiator = { userId: "u1", culture: "en-US", timeZone: "UTC" };
      const traceContext = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      const { id, claimed } = await d.taskInsertClaimed(
        task({ name: "Now", priority: 2, timeoutMs: 5, initiator, withUserConnection: true, initiatorSignature: "sig", traceContext }),
        { workerId: "w1", leaseMs: 60_000 },
      );
      assert.ok(claimed, "handed off: only a running and a delayed task are in the store");
      assert.equal(claimed.id, id);
      assert.deepEqual(
        { ...claimed, parameters: [...claimed.parameters] },
        {
          id,
          name: "Now",
          queue: "default",
          priority: 2,
          parameters: [...bytes],
          attempt: 1,
          maxAttempts: 3,
          runSeq: 1,
          timeoutMs: 5,
          withUserConnection: true,
          initiator,
          initiatorSignature: "sig",
          runAtMs: claimed.runAtMs,
          claimedAtMs: claimed.runAtMs,
          traceContext,
        },
      );
      const stored = await d.taskGet(id);
      assert.equal(stored?.state, "running");
      assert.equal(stored?.workerId, "w1");
      assert.equal(stored?.attempt, 1);
      assert.deepEqual(await d.taskClaim({ workerId: "w2", limit: 10, leaseMs: 60_000 }), [], "no one else claims it");
      assert.deepEqual(await d.taskHeartbeat({ workerId: "w1", leaseMs: 60_000, runs: [{ id, runSeq: 1 }] }), [{ id, runSeq: 1 }]);
      assert.deepEqual((await d.taskCompleteMany([{ kind: "succeeded", id, runSeq: 1 }])).rejected, []);
      assert.equal((await d.taskGet(id))?.state, "succeeded");
      assert.equal((await d.taskGet(later))?.state, "queued");
    });

    it("stores a task queued, to wait its turn, when a task is due or too many wait to look through", async (t) => {
      const d = await fresh();
      if (!d.taskInsertClaimed) return t.skip("the driver stores and claims separately");
      const first = await d.taskInsert(task({ priority: -5 }));
      const waits = await d.taskInsertClaimed(task({ priority: 5 }), { workerId: "w", leaseMs: 60_000 });
      assert.equal(waits.claimed, null, "a due task is waiting, even at a lower priority");
      assert.equal((await d.taskGet(waits.id))?.state, "queued");
      assert.deepEqual(
        (await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 })).map((c) => c.id),
        [waits.id, first],
        "then claimed in the usual order",
      );

      // Delayed tasks ahead are not due: fewer than the look covers, the task is handed off; as
      // many, one further on might be due, and it waits.
      const e = await fresh();
      await e.taskInsertMany(Array.from({ length: HAND_OFF_LOOKAHEAD - 1 }, () => task({ priority: 9, delayMs: 60_000 })));
      assert.ok((await e.taskInsertClaimed!(task(), { workerId: "w", leaseMs: 60_000 })).claimed);
      await e.taskInsert(task({ priority: 9, delayMs: 60_000 }));
      const behind = await e.taskInsertClaimed!(task(), { workerId: "w", leaseMs: 60_000 });
      assert.equal(behind.claimed, null);
      assert.equal((await e.taskGet(behind.id))?.state, "queued");

      for (const bad of [task({ dedupKey: "k" }), task({ delayMs: 0 }), task({ runAtMs: Date.now() })]) {
        await assert.rejects(e.taskInsertClaimed!(bad, { workerId: "w", leaseMs: 60_000 }), /taskInsertClaimed takes a task due now/);
      }
    });

    it("claims by name and queue filters, and within a rate limit per fixed window", async () => {
      const d = await fresh();
      await d.taskInsertMany([task({ name: "Mail", queue: "q1" }), task({ name: "Mail", queue: "q2" }), task({ name: "Bill", queue: "q1" })]);
      const notQ1 = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000, excludeQueues: ["q1"] });
      assert.deepEqual(notQ1.map((c) => [c.name, c.queue]), [["Mail", "q2"]]);
      const notMail = await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000, excludeNames: ["Mail"] });
      assert.deepEqual(notMail.map((c) => c.name), ["Bill"]);
      assert.deepEqual((await d.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000, names: ["Mail"] })).map((c) => c.queue), ["q1"]);

      await d.taskInsertMany(Array.from({ length: 7 }, () => task({ name: "Rated" })));
      const rate = { limit: 3, intervalMs: 60_000 };
      d.clockShift(60_000 - (Date.now() % 60_000) + 100); // just after a window's start: no boundary is crossed by chance
      const claim = (limit: number) => d.taskClaim({ workerId: "w", limit, leaseMs: 60_000, names: ["Rated"], rate });
      assert.equal((await claim(2)).length, 2);
      assert.equal((await claim(10)).length, 1);
      assert.equal((await claim(10)).length, 0);
      d.clockShift(60_000);
      assert.equal((await claim(10)).length, 3);
      await assert.rejects(d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1, rate }), /exactly one task name/);
    });
  });
}
