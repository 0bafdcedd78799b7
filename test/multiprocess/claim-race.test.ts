/**
 * Four worker processes at concurrency 50 race for the same few thousand due tasks: the claims
 * (FOR UPDATE SKIP LOCKED) never hand one task to two workers.
 *
 * The tasks are stored before the workers start, in a transaction that commits only once all
 * four listen: its notification wakes them together, so their claims overlap on the same rows
 * rather than the first worker up draining the queue alone. No lease expires here (the run takes
 * a few seconds, the default lease 15 s), so no clock is moved.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { Task } from "../../src/index.ts";
import { closeLedgerPools, createLedgerSql, LedgerTask, type LedgerParameters } from "../fixtures/ledger-tasks.ts";
import { startRuntime, TEST_POSTGRES_URL, tempSchema, until } from "../helpers.ts";
import { adminClient, allTasks, ledgerRows, locksOnSchema, runsByTask, spawnWorker, stopWorker, storeUrl } from "./helpers.ts";

const TASKS = 4_000;
const WORKERS = 4;
const CONCURRENCY = 50;

// At file level, so the schema is dropped after the worker processes are gone (see ./helpers.ts).
const schema = tempSchema();
after(() => closeLedgerPools());

it(`${WORKERS} workers at concurrency ${CONCURRENCY} claim ${TASKS} tasks: each runs exactly once`, { timeout: 120_000 }, async () => {
  const t0 = performance.now();
  const db = storeUrl(schema);
  const parent = await startRuntime({ dir: "", db, worker: false, maintenance: false, tasks: [LedgerTask] });
  await parent.transaction((tx) => tx.execute(createLedgerSql(schema)));
  const admin = await adminClient();

  const parameters: LedgerParameters[] = Array.from({ length: TASKS }, () => ({ db: TEST_POSTGRES_URL, schema }));
  let commit!: () => void;
  const allListening = new Promise<void>((resolve) => (commit = resolve));
  let stored!: () => void;
  const inserted = new Promise<void>((resolve) => (stored = resolve));
  const enqueued = parent.transaction(async () => {
    const handles = await Task.startNewMany(LedgerTask, parameters);
    stored();
    await allListening;
    return handles;
  });
  await Promise.race([inserted, enqueued]);

  const workers = Array.from({ length: WORKERS }, (_, i) => spawnWorker({ schema, name: `w${i + 1}`, concurrency: CONCURRENCY }));
  try {
    await Promise.all(workers.map((w) => w.ready));
  } finally {
    commit();
  }
  const handles = await enqueued;
  const t1 = performance.now();
  await until(async () => (await parent.countTasks()).succeeded === TASKS, `all ${TASKS} tasks to succeed`, 60_000);
  const t2 = performance.now();

  const counts = await parent.countTasks();
  assert.deepEqual(counts, { ...counts, succeeded: TASKS, running: 0, queued: 0, failed: 0, dead: 0 });
  const rows = await ledgerRows(admin, schema);
  const runs = runsByTask(rows);
  assert.equal(rows.length, TASKS, "one run per task");
  assert.deepEqual([...runs.keys()].sort(), handles.map((h) => h.id).sort());
  assert.deepEqual(
    [...runs].filter(([, r]) => r.length > 1).map(([id]) => id),
    [],
    "no task ran twice",
  );
  assert.deepEqual(
    (await allTasks(parent)).filter((t) => t.attempt !== 1).map((t) => `${t.id}: attempt ${t.attempt}`),
    [],
  );
  const perWorker = workers.map((w) => rows.filter((r) => r.pid === w.pid).length);
  assert.ok(
    perWorker.every((n) => n > 0),
    `every worker ran tasks: ${perWorker.join(", ")}`,
  );

  await Promise.all(workers.map((w) => stopWorker(w)));
  assert.deepEqual(await locksOnSchema(schema), { relationLocks: [], rowsLockable: true });
  console.log(
    `claim race: workers ready after ${Math.round(t1 - t0)} ms, ${TASKS} tasks drained in ${Math.round(t2 - t1)} ms; runs per worker ${perWorker.join(", ")}`,
  );
});
