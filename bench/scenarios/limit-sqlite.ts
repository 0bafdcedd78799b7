import Database from "better-sqlite3";
import { Worker } from "node:worker_threads";
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, Measurement, RoundResult } from "../lib/protocol.ts";
import { afterIdle, CLAIM_BATCH, decodePayload, IDLE_GAP_MS, PAYLOAD } from "../lib/raw.ts";
import { openRuntime, underwayDb } from "../lib/runtime.ts";
import { median, percentile, perSecond } from "../lib/stats.ts";

/**
 * Scenario 7 on SQLite: what this machine's SQLite does without a queue library around it, with
 * underway's settings (WAL, synchronous=NORMAL). Twice: on a minimal queue table (one partial
 * index), and on underway's own schema (created by the runtime's migrations), with the SQL the
 * SQLite driver uses. The second pair tells schema cost from JavaScript cost.
 */
export async function limitSqlite(spec: ChildSpec): Promise<RoundResult> {
  // The runtime creates underway's schema, then steps aside.
  const file = underwayDb(spec);
  const runtime = await openRuntime(file, { worker: false, maintenance: false });
  await runtime.stop();

  const db = new Database(file);
  const budgetMs = spec.budgetMs ?? spec.timeLimitMs / 4;
  try {
    db.pragma("busy_timeout = 5000");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(`
      CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued', payload BLOB NOT NULL,
                         run_at INTEGER NOT NULL);
      CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state = 'queued';`);
    const minimal = measurePair(db, spec.count, budgetMs, {
      insert: db.prepare("INSERT INTO jobs (payload, run_at) VALUES (?, ?)"),
      insertArgs: (now) => [PAYLOAD, now],
      claim: db.prepare(
        `UPDATE jobs SET state = 'running'
         WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ? ORDER BY run_at, id LIMIT ?)
         RETURNING id, payload`,
      ),
      claimArgs: (now) => [now, CLAIM_BATCH],
      done: db.prepare("UPDATE jobs SET state = 'done' WHERE id = ? AND state = 'running'"),
      doneArgs: (id) => [id],
      payloadOf: (row) => row.payload,
    });
    const schemaSql: PairSql = {
      insert: db.prepare(
        `INSERT INTO underway_tasks (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
           with_user_connection, user_id, user_context, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertArgs: (now) => ["BenchNoop", "default", 0, PAYLOAD, now, 5, 300_000, 0, null, null, now, now],
      claim: db.prepare(
        `UPDATE underway_tasks SET state = 'running', attempt = attempt + 1, run_seq = run_seq + 1,
           worker_id = ?, started_at = ?, lease_expires_at = ?, updated_at = ?, progress = NULL, progress_message = NULL
         WHERE id IN (SELECT id FROM underway_tasks WHERE state IN ('queued', 'failed') AND run_at <= ?
                      ORDER BY priority DESC, run_at, id LIMIT ?)
         RETURNING id, name, queue, priority, parameters, attempt, max_attempts, run_seq,
           timeout_ms, with_user_connection, user_id, user_context, run_at`,
      ),
      claimArgs: (now) => ["bench", now, now + 15_000, now, now, CLAIM_BATCH],
      done: db.prepare(
        `UPDATE underway_tasks SET state = 'succeeded', finished_at = ?, updated_at = ?, lease_expires_at = NULL
         WHERE id = ? AND run_seq = ? AND state = 'running'`,
      ),
      doneArgs: (id, row) => [Date.now(), Date.now(), id, row.run_seq],
      payloadOf: (row) => row.parameters,
    };
    const schema = measurePair(db, spec.count, budgetMs, schemaSql);
    // The same claim loop while another thread spins on the other core: what work on the second
    // core (an isolated task's thread, say) costs this one, through the caches and the memory
    // they share. The rows go in in one transaction: only the claim loop is measured.
    const contended = await withSpinningThread(() => measurePair(db, spec.count, budgetMs, schemaSql, true));
    // One INSERT (its own commit) on the minimal table after each idle pause: the store's part of
    // picking up a task that arrives at an idle worker (scenarios 4 and 4b), next to the same
    // INSERT back to back (1 / the INSERT rate above).
    const insertIdle = db.prepare("INSERT INTO jobs (payload, run_at) VALUES (?, ?)");
    const idle = await afterIdle(spec.idleSamples ?? 0, () => insertIdle.run(PAYLOAD, Date.now()));
    const partial = (rows: number): { partial?: string } =>
      rows < spec.count ? { partial: `${rows.toLocaleString("en-US")} of ${spec.count.toLocaleString("en-US")} rows in ${budgetMs / 1000} s` } : {};
    const measurements: Measurement[] = [
      { key: "insert-minimal", label: "INSERT, one commit each (minimal table)", unit: "rows/s", value: minimal.insertRate, ...partial(minimal.rows) },
      { key: "claim-minimal", label: `claim ${CLAIM_BATCH} + decode + mark done (minimal table)`, unit: "rows/s", value: minimal.claimRate },
      { key: "insert-schema", label: "INSERT, one commit each (underway schema)", unit: "rows/s", value: schema.insertRate, ...partial(schema.rows) },
      { key: "claim-schema", label: `claim ${CLAIM_BATCH} + decode + mark done (underway schema)`, unit: "rows/s", value: schema.claimRate },
      {
        key: "claim-schema-contended",
        label: `claim ${CLAIM_BATCH} + decode + mark done (underway schema), another thread spinning on the other core`,
        unit: "rows/s",
        value: contended.claimRate,
      },
    ];
    if (idle.length > 0) {
      measurements.push(
        { key: "insert-warm", label: "one INSERT and its commit, back to back (minimal table)", unit: "µs", value: 1e6 / minimal.insertRate },
        { key: "insert-idle", label: `one INSERT and its commit after ${IDLE_GAP_MS} ms idle, median (minimal table)`, unit: "µs", value: median(idle) * 1_000 },
      );
    }
    return {
      measurements,
      checks: [
        `${minimal.rows.toLocaleString("en-US")} and ${schema.rows.toLocaleString("en-US")} rows inserted, each claimed once and marked done`,
        ...(idle.length > 0 ? [`${idle.length} INSERTs timed after ${IDLE_GAP_MS} ms idle`] : []),
      ],
      details: {
        rows: spec.count,
        rowsMinimal: minimal.rows,
        rowsSchema: schema.rows,
        claimBatch: CLAIM_BATCH,
        insertMinimalMs: minimal.insertMs,
        claimMinimalMs: minimal.claimMs,
        insertSchemaMs: schema.insertMs,
        claimSchemaMs: schema.claimMs,
        claimSchemaContendedMs: contended.claimMs,
        insertsAfterIdle: idle.length,
        ...(idle.length > 0 ? { insertAfterIdleMinMs: idle[0]!, insertAfterIdleP90Ms: percentile(idle, 90), insertAfterIdleMaxMs: idle.at(-1)! } : {}),
      },
    };
  } finally {
    db.close();
  }
}

/** Runs `fn` while a worker thread spins (a synchronous loop, no memory traffic to speak of). */
async function withSpinningThread<T>(fn: () => T): Promise<T> {
  const spinner = new Worker('require("node:worker_threads").parentPort.postMessage("spinning"); for (;;) {}', { eval: true });
  try {
    await new Promise<void>((resolve, reject) => {
      spinner.once("message", () => resolve());
      spinner.once("error", reject);
    });
    return fn();
  } finally {
    await spinner.terminate();
  }
}

interface ClaimedRow {
  id: number;
  run_seq?: number;
  payload?: Uint8Array;
  parameters?: Uint8Array;
}

interface PairSql {
  insert: Database.Statement;
  insertArgs: (now: number) => unknown[];
  claim: Database.Statement;
  claimArgs: (now: number) => unknown[];
  done: Database.Statement;
  doneArgs: (id: number, row: ClaimedRow) => unknown[];
  /** The claimed row's encoded parameters, decoded as a worker would before running the task. */
  payloadOf: (row: ClaimedRow) => Uint8Array | undefined;
}

/**
 * Inserts `wanted` rows (fewer if `budgetMs` runs out), each in its own (autocommit) transaction; then claims them CLAIM_BATCH at
 * a time (one commit per claim), decodes each claimed row's MessagePack payload, and marks each
 * claimed batch done in one transaction, row by row, as the product's completer does.
 */
function measurePair(db: Database.Database, wanted: number, budgetMs: number, sql: PairSql, insertInOne = false) {
  let started = monotonicNow();
  const deadline = started + budgetMs;
  let count = 0;
  if (insertInOne) {
    db.transaction(() => {
      for (; count < wanted; count++) sql.insert.run(...sql.insertArgs(Date.now()));
    })();
  }
  while (count < wanted && monotonicNow() < deadline) {
    sql.insert.run(...sql.insertArgs(Date.now()));
    count++;
  }
  const insertMs = monotonicNow() - started;

  const markDone = db.transaction((rows: ClaimedRow[]) => {
    for (const row of rows) {
      if (sql.done.run(...sql.doneArgs(row.id, row)).changes !== 1) throw new Error(`row ${row.id} was not running`);
    }
  });
  let claimed = 0;
  started = monotonicNow();
  for (;;) {
    const rows = sql.claim.all(...sql.claimArgs(Date.now())) as ClaimedRow[];
    if (rows.length === 0) break;
    for (const row of rows) decodePayload(sql.payloadOf(row));
    markDone.immediate(rows);
    claimed += rows.length;
  }
  const claimMs = monotonicNow() - started;
  if (claimed !== count) throw new Error(`raw claim loop claimed ${claimed} rows of ${count}`);
  return { rows: count, insertMs, claimMs, insertRate: perSecond(count, insertMs), claimRate: perSecond(count, claimMs) };
}
