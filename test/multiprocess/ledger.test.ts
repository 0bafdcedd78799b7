/**
 * Three worker processes share one PostgreSQL store; one is SIGKILLed in the middle of the run.
 * Every task still succeeds, every task's effect is in the ledger, and the only tasks that ran
 * twice are tasks the killed worker held when it died.
 *
 * Clocks: the worker processes use the real database clock and the default 15 s lease (the CLI
 * cannot shorten it), renewed every 5 s. `clockShift` moves only the clock of the runtime it is
 * called on, so a rescue from a shifted runtime sees *every* lease as expired, live workers'
 * included. The test therefore rescues only once the killed worker's tasks are the only running
 * ones: every other task has succeeded, so no live worker holds a lease that could be taken away.
 * The rescued tasks are due at the rescuer's shifted "now", 15 s ahead of the worker processes'
 * clock, so they are run by a worker in this process whose clock is shifted the same way.
 * The runtime in this process leads maintenance (it starts first and its timed rescue waits an
 * hour), so no worker process rescues anything on its own.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { closeLedgerPools, createLedgerSql, LedgerTask, ledgerApplicationName, type LedgerParameters } from "../fixtures/ledger-tasks.ts";
import { startRuntime, TEST_POSTGRES_URL, tempSchema, until } from "../helpers.ts";
import {
  adminClient,
  allTasks,
  backendCount,
  DEFAULT_LEASE_MS,
  ledgerCount,
  ledgerRows,
  locksOnSchema,
  runsByTask,
  spawnWorker,
  stopWorker,
  storeUrl,
} from "./helpers.ts";

const TASKS = 3_000;
const CONCURRENCY = 20;

// At file level, so the schema is dropped after the worker processes are gone (see ./helpers.ts).
const schema = tempSchema();
after(() => closeLedgerPools());

it("a SIGKILLed worker's tasks run again elsewhere; only they run twice", { timeout: 120_000 }, async () => {
  const t0 = performance.now();
  const marks: string[] = [];
  const mark = (what: string): void => void marks.push(`${what} ${Math.round(performance.now() - t0)} ms`);
  const db = storeUrl(schema);
  const parent = await startRuntime({ dir: "", db, worker: false, maintenance: { rescueIntervalMs: 3_600_000 }, tasks: [LedgerTask] });
  await parent.transaction((tx) => tx.execute(createLedgerSql(schema)));
  const admin = await adminClient();

  // Tasks stay in flight 0-4 ms after recording their run, so a worker always holds some.
  const parameters: LedgerParameters[] = Array.from({ length: TASKS }, (_, i) => ({ db: TEST_POSTGRES_URL, schema, holdMs: i % 5 }));
  const handles = await parent.run(() => Task.startNewMany(LedgerTask, parameters));
  assert.equal(handles.length, TASKS);

  const workers = ["w1", "w2", "w3"].map((name) => spawnWorker({ schema, name, concurrency: CONCURRENCY }));
  const [victim, ...survivors] = workers as [(typeof workers)[0], ...typeof workers];

  const runningOf = async (pid: number): Promise<string[]> =>
    (await allTasks(parent, ["running"])).filter((t) => t.workerId?.split(":")[1] === String(pid)).map((t) => t.id);

  // Kill the victim in the middle of the run, while it holds tasks.
  await until(
    async () => (await ledgerCount(admin, schema)) >= TASKS / 3 && (await runningOf(victim.pid)).length > 0,
    "a third of the tasks to run, the victim holding some",
    60_000,
  );
  mark("kill");
  victim.child.kill("SIGKILL");
  assert.equal((await victim.exit).signal, "SIGKILL");
  const replacement = spawnWorker({ schema, name: "w4", concurrency: CONCURRENCY });
  survivors.push(replacement);

  // Once the server has dropped the dead process's backends, nothing it sent can still commit:
  // the tasks it holds now are all it will ever hold.
  await until(
    async () => (await backendCount(admin, [victim.applicationName, ledgerApplicationName(victim.pid)])) === 0,
    "the server to drop the killed worker's connections",
    30_000,
  );
  mark("backends gone");
  const held = new Set(await runningOf(victim.pid));
  // Running in the store: the victim's runs, and runs it had finished but not yet recorded (their
  // outcomes are written in batches, and it claims again as soon as a slot is free).
  assert.ok(held.size > 0, "the victim held tasks when it died");

  // Everything else finishes on the live workers; then the victim's tasks are the only running
  // ones, and no live worker holds a lease.
  const orphaned = await until(
    async () => {
      const counts = await parent.countTasks();
      if (counts.queued + counts.failed > 0) return null;
      const running = await allTasks(parent, ["running"]);
      return running.every((t) => held.has(t.id)) ? running : null;
    },
    "every task but the victim's to end",
    60_000,
  );
  mark("others done");
  assert.deepEqual(new Set(orphaned.map((t) => t.id)), held, "nothing rescued the victim's tasks before the test did");

  // The parent's clock passes the lease: every running task's lease has expired, and those are
  // the victim's only.
  parent.driver.clockShift(DEFAULT_LEASE_MS + 1);
  assert.deepEqual(await parent.rescuer?.runOnce(), { retried: held.size, dead: 0 });

  // They are due at the shifted now, so a worker sharing that clock runs them.
  const sweeper = createRuntime({ db, tasks: [LedgerTask], worker: { concurrency: CONCURRENCY }, maintenance: false, logger: false, isolation: "none" });
  sweeper.driver.clockShift(DEFAULT_LEASE_MS + 1);
  await sweeper.start();
  try {
    await until(async () => (await parent.countTasks()).succeeded === TASKS, "the rescued tasks to succeed", 30_000);
  } finally {
    await sweeper.stop({ graceMs: 5_000 });
  }

  mark("rescued done");
  const counts = await parent.countTasks();
  assert.deepEqual(counts, { ...counts, succeeded: TASKS, running: 0, queued: 0, failed: 0, dead: 0 });

  const ids = handles.map((h) => h.id);
  const tasks = new Map((await allTasks(parent)).map((t) => [t.id, t]));
  const runs = runsByTask(await ledgerRows(admin, schema));
  assert.deepEqual([...runs.keys()].sort(), [...ids].sort(), "every task's effect is in the ledger, and only theirs");
  const twice = [...runs].filter(([, r]) => r.length > 1).map(([id]) => id);
  assert.deepEqual(
    twice.filter((id) => !held.has(id)),
    [],
    "only tasks the killed worker held ran more than once",
  );
  for (const id of ids) {
    const task = tasks.get(id);
    const taskRuns = runs.get(id) ?? [];
    if (held.has(id)) {
      assert.equal(task?.attempt, 2, `task ${id}: the lost attempt counts`);
      assert.deepEqual(
        (await parent.getTask(id)).errors.map((e) => [e.attempt, e.name]),
        [[1, "LeaseExpiredError"]],
      );
      // At most one lost run (of the victim), then the run that counted, in a live process.
      const last = taskRuns[taskRuns.length - 1];
      assert.ok(taskRuns.length <= 2, `task ${id} ran ${taskRuns.length} times`);
      assert.equal(last?.attempt, 2);
      assert.notEqual(last?.pid, victim.pid);
      if (taskRuns.length === 2) assert.deepEqual(taskRuns[0], { taskId: id, attempt: 1, pid: victim.pid });
    } else {
      assert.equal(task?.attempt, 1, `task ${id} ran once`);
      assert.equal(taskRuns.length, 1);
      assert.equal(taskRuns[0]?.attempt, 1);
    }
  }
  const pids = new Set([...runs.values()].flat().map((r) => r.pid));
  assert.ok(pids.has(victim.pid) && survivors.some((w) => pids.has(w.pid)), "the victim and the others all ran tasks");

  await Promise.all(survivors.map((w) => stopWorker(w)));
  assert.equal((await parent.countTasks()).running, 0);
  assert.deepEqual(await locksOnSchema(schema), { relationLocks: [], rowsLockable: true });
  mark("end");
  console.log(
    `${marks.join(", ")}; ledger: ${TASKS} tasks, victim held ${held.size}, ${twice.length} ran twice; runs per pid ` +
      JSON.stringify(Object.fromEntries([...pids].map((pid) => [pid, [...runs.values()].flat().filter((r) => r.pid === pid).length]))),
  );
});
