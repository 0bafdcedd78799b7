/**
 * The server terminates every connection of a working runtime (pg_terminate_backend, as a failover
 * or an administrator does): the runtime carries on without a restart, no task runs twice or is
 * lost, and the LISTEN wake-up works again afterwards.
 *
 * Only this file's runtime is hit: its URL sets a distinct application_name, which pg gives to
 * its pooled connections and its LISTEN connection alike. The ledger (the tasks' own pool) and
 * the producing runtime keep theirs. The worker and the rescuer share one runtime, hence one
 * clock: if a claim committed but its answer was lost with the connection, the task waits for
 * its lease; the test moves that runtime's clock past the lease only when such orphans are the
 * only unfinished tasks and nothing runs, so no live lease can be taken.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Task, type TaskInfo } from "../../src/index.ts";
import { closeLedgerPools, createLedgerSql, LedgerTask, type LedgerParameters } from "../fixtures/ledger-tasks.ts";
import { startRuntime, TEST_POSTGRES_URL, tempSchema, until } from "../helpers.ts";
import {
  adminClient,
  allTasks,
  DEFAULT_LEASE_MS,
  ledgerRows,
  locksOnSchema,
  ROOT,
  runsByTask,
  spawnTracked,
  storeUrl,
} from "./helpers.ts";

const BATCHES = 30;
const BATCH = 20;
/** Terminate the runtime's connections after these batches. */
const LOSSES = new Set([8, 16, 24]);

// At file level, so the schema is dropped after any child process is gone (see ./helpers.ts).
const schema = tempSchema();
after(() => closeLedgerPools());
// When a test here dies of an uncaught exception, its stream of tasks runs on into the teardown,
// and a claim answered after runtime.stop() begins a task on the closed store, whose outcome is
// then retried every 500 ms for ever (see stop-during-claim.test.ts). Do not let that hang the run.
after(() => {
  setTimeout(() => {
    console.error("connection-loss: still running 10 s after the last hook; exiting");
    process.exit(1);
  }, 10_000).unref();
});

it("work resumes after the server terminates all of a runtime's connections", { timeout: 120_000 }, async () => {
  const t0 = performance.now();
  const workerApp = `${schema}_worker`;
  const producer = await startRuntime({ dir: "", db: storeUrl(schema), worker: false, maintenance: false, tasks: [LedgerTask] });
  await producer.transaction((tx) => tx.execute(createLedgerSql(schema)));
  const runtime = await startRuntime({
    dir: "",
    db: storeUrl(schema, workerApp),
    tasks: [LedgerTask],
    // Polling would hide a lost wake-up: only LISTEN (and the runtime's own wake-ups) find work.
    worker: { concurrency: 10, pollIntervalMs: 600_000 },
    maintenance: { rescueIntervalMs: 3_600_000 },
  });
  const admin = await adminClient();
  const started = new Set<string>();
  runtime.on("taskStarted", (e) => started.add(`${e.taskId}:${e.attempt}`));

  const listeners = async (): Promise<number[]> =>
    (
      await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'",
        [workerApp],
      )
    ).rows.map((r) => r.pid);
  assert.equal((await listeners()).length, 1, "the runtime listens on a connection named as its URL says");

  const killed = new Set<number>();
  const terminate = async (): Promise<number> => {
    const { rows } = await admin.query<{ pid: number; ok: boolean }>(
      `SELECT pid, pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()`,
      [workerApp],
    );
    const terminated = rows.filter((r) => r.ok);
    for (const r of terminated) killed.add(r.pid);
    return terminated.length;
  };

  // A stream of tasks, stored by another runtime (so only notifications tell the worker), with
  // every connection of the worker's runtime terminated three times along the way.
  const ids: string[] = [];
  const losses: number[] = [];
  for (let b = 1; b <= BATCHES; b++) {
    const parameters: LedgerParameters[] = Array.from({ length: BATCH }, (_, i) => ({ db: TEST_POSTGRES_URL, schema, holdMs: (b + i) % 8 }));
    const handles = await producer.run(() => Task.startNewMany(LedgerTask, parameters));
    ids.push(...handles.map((h) => h.id));
    if (LOSSES.has(b)) losses.push(await terminate());
    await sleep(10);
  }
  // Each time at least the LISTEN connection and a pooled one were in use.
  assert.ok(losses.every((n) => n >= 2), `connections terminated per loss: ${losses.join(", ")}`);

  // Settled: nothing runs here, and every unfinished task is running in the store without this
  // worker having started it (a claim whose answer was lost). Checked twice, so a claim's answer
  // still on its way is not taken for one. (A dead task would be reported below.)
  const unfinished = async (): Promise<TaskInfo[] | null> => {
    if (runtime.worker?.activeCount !== 0) return null;
    const open = await allTasks(producer, ["queued", "running", "failed"]);
    return open.every((t) => t.state === "running" && !started.has(`${t.id}:${t.attempt}`)) ? open : null;
  };
  const orphans = await until(
    async () => {
      const first = await unfinished();
      const second = first && (await unfinished());
      return second && second.length === first.length ? second : null;
    },
    "the stream to be worked off",
    60_000,
  );
  const t1 = performance.now();
  if (orphans.length > 0) {
    runtime.driver.clockShift(DEFAULT_LEASE_MS + 1);
    assert.deepEqual(await runtime.rescuer?.runOnce(), { retried: orphans.length, dead: 0 });
    await until(async () => (await producer.countTasks()).succeeded === ids.length, "the orphaned claims to run", 30_000);
  }

  const counts = await producer.countTasks();
  assert.deepEqual(counts, { ...counts, succeeded: ids.length, running: 0, queued: 0, failed: 0, dead: 0 });
  const runs = runsByTask(await ledgerRows(admin, schema));
  assert.deepEqual([...runs.keys()].sort(), [...ids].sort(), "no task was lost");
  assert.deepEqual(
    [...runs].filter(([, r]) => r.length > 1).map(([id, r]) => `${id}: ${r.length} runs`),
    [],
    "no task ran twice",
  );
  const orphanIds = new Set(orphans.map((t) => t.id));
  for (const task of await allTasks(producer)) {
    // An orphaned claim spent an attempt without running; every other task ran at its first.
    assert.equal(task.attempt, orphanIds.has(task.id) ? 2 : 1, `task ${task.id}`);
    assert.equal(runs.get(task.id)?.[0]?.attempt, task.attempt);
  }

  // LISTEN works again: the listener reconnected, and a task stored elsewhere wakes the idle worker
  // (its poll is ten minutes away).
  await until(async () => (await listeners()).some((pid) => !killed.has(pid)), "the listener to reconnect", 30_000);
  assert.equal(runtime.worker?.activeCount, 0);
  const t2 = performance.now();
  const late = await producer.run(() => Task.startNew(LedgerTask, { db: TEST_POSTGRES_URL, schema }));
  assert.equal((await late.wait({ timeoutMs: 5_000 })).state, "succeeded");
  const pickupMs = Math.round(performance.now() - t2);

  assert.deepEqual(await locksOnSchema(schema), { relationLocks: [], rowsLockable: true });
  console.log(
    `connection loss: ${ids.length} tasks, ${losses.join("/")} connections terminated per loss, ` +
      `${orphans.length} orphaned claims, worked off after ${Math.round(t1 - t0)} ms; a task after the loss ran in ${pickupMs} ms`,
  );
});

it("a connection lost while a transaction waits between statements fails the transaction, not the process", { timeout: 90_000 }, async () => {
  const child = spawnTracked(["--import", "tsx", join(ROOT, "test", "multiprocess", "idle-transaction-child.ts"), TEST_POSTGRES_URL, schema]);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  assert.deepEqual(exit, { code: 0, signal: null }, `the process died:\n${stderr.split("\n").slice(0, 12).join("\n")}`);
  const report = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as { outcome?: string; ping?: string };
  assert.match(report.outcome ?? "", /^rejected: /);
  assert.equal(report.ping, "ok");
});
