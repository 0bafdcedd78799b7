import assert from "node:assert/strict";
import { it } from "node:test";
import { Task, type IBackgroundTask, type Runtime } from "../../src/index.ts";
import type { ClaimedTask, StorageDriver } from "../../src/store/driver.ts";
import { NapTask } from "../fixtures/isolation-tasks.ts";
import { gate, startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();

/** Counts its runs (reset by each test that uses it). */
class Counted implements IBackgroundTask<null> {
  static runs = 0;
  run(): void {
    Counted.runs++;
  }
}

/** The runtime's driver, which has the hand-off (both stores do). */
function handOffDriver(runtime: Runtime): StorageDriver & Required<Pick<StorageDriver, "taskInsertClaimed">> {
  const driver = runtime.driver;
  if (!driver.taskInsertClaimed) throw new Error(`the store ${driver.description} has no taskInsertClaimed`);
  return driver as StorageDriver & Required<Pick<StorageDriver, "taskInsertClaimed">>;
}

/** The ids every claim of the runtime's worker returned, and the tasks its store handed over as it stored them. */
function watchStore(runtime: Runtime): { claimed: Set<string>; handedOver: Set<string> } {
  const driver = handOffDriver(runtime);
  const claimed = new Set<string>();
  const handedOver = new Set<string>();
  const claim = driver.taskClaim.bind(driver);
  driver.taskClaim = async (params) => {
    const tasks: ClaimedTask[] = await claim(params);
    for (const t of tasks) claimed.add(t.id);
    return tasks;
  };
  const insertClaimed = driver.taskInsertClaimed.bind(driver);
  driver.taskInsertClaimed = async (params, reservation) => {
    const stored = await insertClaimed(params, reservation);
    if (stored.claimed) handedOver.add(stored.id);
    return stored;
  };
  return { claimed, handedOver };
}

const ended = async (runtime: Runtime, id: string) =>
  until(async () => {
    const t = await runtime.getTask(id);
    return ["succeeded", "failed", "dead", "canceled"].includes(t.state) ? t : null;
  }, `task ${id} to end`);

it("runs a task started in its own process as its store hands it over, with no claim, when nothing else is due", async () => {
  const ran: string[] = [];
  class Quick implements IBackgroundTask<{ n: number }> {
    run({ n }: { n: number }): void {
      ran.push(`quick ${n}`);
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Quick], worker: { concurrency: 2 } });
  const store = watchStore(runtime);
  const handle = await runtime.run(() => Task.startNew(Quick, { n: 1 }));
  const task = await ended(runtime, handle.id);
  assert.equal(task.state, "succeeded");
  assert.equal(task.attempt, 1);
  assert.ok(store.handedOver.has(handle.id), "handed over as it was stored");
  assert.ok(!store.claimed.has(handle.id), "never claimed");
  assert.deepEqual(ran, ["quick 1"]);

  // Inside a transaction the task must not run before the commit: stored, then claimed.
  const inTx = await runtime.transaction(() => runtime.run(() => Task.startNew(Quick, { n: 2 })));
  assert.equal((await ended(runtime, inTx.id)).state, "succeeded");
  assert.ok(store.claimed.has(inTx.id) && !store.handedOver.has(inTx.id), "claimed after the commit");

  // Delayed, deduplicated and bulk starts are claimed as before.
  const delayed = await runtime.run(() => Task.startNew(Quick, { n: 3 }, { delayMs: 0 }));
  const keyed = await runtime.run(() => Task.startNew(Quick, { n: 4 }, { dedupKey: "k" }));
  const many = await runtime.run(() => Task.startNewMany(Quick, [{ n: 5 }]));
  for (const h of [delayed, keyed, ...many]) {
    assert.equal((await ended(runtime, h.id)).state, "succeeded");
    assert.ok(store.claimed.has(h.id) && !store.handedOver.has(h.id), `task ${h.id} claimed`);
  }
});

it("lets a start wait its turn behind a due task, and its worker claims it as usual", async () => {
  const hold = gate();
  const order: number[] = [];
  class Ordered implements IBackgroundTask<{ n: number }> {
    async run({ n }: { n: number }): Promise<void> {
      order.push(n);
      if (n === 0) await hold.promise;
    }
  }
  // One slot: task 0 holds it, 1 and 2 wait (stored queued: no slot to hand them to).
  const runtime = await startRuntime({ dir, tasks: [Ordered], worker: { concurrency: 1, prefetch: 0 } });
  const store = watchStore(runtime);
  const first = await runtime.run(() => Task.startNew(Ordered, { n: 0 }));
  await until(() => order.length === 1, "task 0 to start");
  const waiting = [await runtime.run(() => Task.startNew(Ordered, { n: 1 })), await runtime.run(() => Task.startNew(Ordered, { n: 2 }))];
  hold.open();
  for (const h of [first, ...waiting]) assert.equal((await ended(runtime, h.id)).state, "succeeded");
  assert.deepEqual(order, [0, 1, 2]);
  assert.ok(store.handedOver.has(first.id), "the first found the worker idle");
  for (const h of waiting) assert.ok(store.claimed.has(h.id) && !store.handedOver.has(h.id), `task ${h.id} claimed in turn`);
});

it("stores a start queued when a task of another worker's queue is due; its own worker claims it", async () => {
  const ran: string[] = [];
  class Queued implements IBackgroundTask<{ n: number }> {
    run({ n }: { n: number }): void {
      ran.push(`queued ${n}`);
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Queued], worker: { concurrency: 4, queues: ["a"] } });
  const other = await startRuntime({ dir, db: runtime.driver.description, worker: false, tasks: [Queued] });
  const store = watchStore(runtime);
  // Due, in a queue this worker does not serve: a claim would not take it, but the store's look
  // ahead sees a due task and keeps the new one waiting (a hand-off never passes due work).
  await other.run(() => Task.startNew(Queued, { n: 0 }, { queue: "b" }));
  const started = await runtime.run(() => Task.startNew(Queued, { n: 1 }, { queue: "a" }));
  assert.equal((await ended(runtime, started.id)).state, "succeeded");
  assert.ok(store.claimed.has(started.id) && !store.handedOver.has(started.id), "stored queued, then claimed");
  assert.deepEqual(ran, ["queued 1"]);
});

it("starts after a task its worker's claim is bringing, and never hands over while a claim is on its way", async () => {
  const order: string[] = [];
  class Logged implements IBackgroundTask<{ name: string }> {
    run({ name }: { name: string }): void {
      order.push(name);
    }
  }
  const runtime = await startRuntime({ dir, tasks: [Logged], worker: { concurrency: 2 } });
  const other = await startRuntime({ dir, db: runtime.driver.description, worker: false, tasks: [Logged] });
  const store = watchStore(runtime);
  const driver = runtime.driver;
  const claim = driver.taskClaim.bind(driver);
  const held = gate();
  const release = gate();
  let holding = true;
  driver.taskClaim = async (params) => {
    const tasks = await claim(params);
    if (tasks.length > 0 && holding) {
      holding = false;
      held.open();
      await release.promise;
    }
    return tasks;
  };
  // Another process's task, claimed by this worker; the answer is held on its way.
  const first = await other.run(() => Task.startNew(Logged, { name: "first" }));
  await held.promise;
  const second = await runtime.run(() => Task.startNew(Logged, { name: "second" }));
  release.open();
  for (const h of [first, second]) assert.equal((await ended(runtime, h.id)).state, "succeeded");
  assert.equal(store.handedOver.has(second.id), false, "no hand-off while a claim was on its way");
  assert.deepEqual(order, ["first", "second"]);
});

it("frees the slot of a start whose store write failed: the next start runs, and stop() returns", async () => {
  Counted.runs = 0;
  const runtime = await startRuntime({ dir, tasks: [Counted], worker: { concurrency: 1 } });
  const store = watchStore(runtime);
  const driver = handOffDriver(runtime);
  const insertClaimed = driver.taskInsertClaimed.bind(driver);
  let fail = true;
  driver.taskInsertClaimed = (params, reservation) => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error("the store went away"));
    }
    return insertClaimed(params, reservation);
  };
  await assert.rejects(runtime.run(() => Task.startNew(Counted, null)), /the store went away/);
  const next = await runtime.run(() => Task.startNew(Counted, null));
  assert.equal((await ended(runtime, next.id)).state, "succeeded");
  assert.ok(store.handedOver.has(next.id), "the one slot was free again for a hand-off");
  assert.equal(Counted.runs, 1);
  await runtime.worker!.stop({ graceMs: 0 });
});

it("gives a task handed over while its worker stops back to the queue, its attempt unspent", async () => {
  Counted.runs = 0;
  const runtime = await startRuntime({ dir, tasks: [Counted], worker: { concurrency: 2 } });
  const driver = handOffDriver(runtime);
  const entered = gate();
  const proceed = gate();
  const insertClaimed = driver.taskInsertClaimed.bind(driver);
  driver.taskInsertClaimed = async (params, reservation) => {
    entered.open();
    await proceed.promise;
    return insertClaimed(params, reservation);
  };
  const started = runtime.run(() => Task.startNew(Counted, null));
  await entered.promise;
  const stopping = runtime.worker!.stop({ graceMs: 0 });
  let stopped = false;
  void stopping.then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(stopped, false, "the worker waits for the start on its way to the store");
  proceed.open();
  const handle = await started;
  await stopping;
  const task = await runtime.getTask(handle.id);
  assert.equal(task.state, "queued");
  assert.equal(task.attempt, 0);
  assert.equal(Counted.runs, 0);
});

it("begins a task handed over to a thread before its start returns, and one that runs on the worker's thread only after", async () => {
  // In a thread: begun at once, so the thread wakes while the start returns to its caller.
  const isolated = await startRuntime({
    dir,
    tasks: [new URL("../fixtures/isolation-tasks.ts", import.meta.url)],
    worker: { concurrency: 2 },
    isolation: { mode: "thread" },
  });
  const threadStore = watchStore(isolated);
  const nap = await isolated.run(() => Task.startNew(NapTask, { ms: 1 }));
  assert.ok(threadStore.handedOver.has(nap.id), "handed over as it was stored");
  assert.equal(isolated.worker!.activeCount, 1, "begun before the start returned");
  assert.equal((await ended(isolated, nap.id)).state, "succeeded");

  // On the worker's thread: never begun inside its starter's call, but on the next turn.
  Counted.runs = 0;
  const here = await startRuntime({ dir, tasks: [Counted], worker: { concurrency: 2 } });
  const hereStore = watchStore(here);
  const counted = await here.run(() => Task.startNew(Counted, null));
  assert.ok(hereStore.handedOver.has(counted.id), "handed over as it was stored");
  assert.equal(here.worker!.activeCount, 0, "not begun when the start returned");
  assert.equal(Counted.runs, 0);
  assert.equal((await ended(here, counted.id)).state, "succeeded");
  assert.equal(Counted.runs, 1);
});
