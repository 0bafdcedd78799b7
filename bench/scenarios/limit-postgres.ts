import pg from "pg";
import { monotonicNow } from "../lib/clock.ts";
import { quoteIdentifier } from "../lib/postgres.ts";
import type { ChildSpec, Measurement, RoundResult } from "../lib/protocol.ts";
import { CLAIM_BATCH, decodePayload, PAYLOAD } from "../lib/raw.ts";
import { openRuntime, underwayDb } from "../lib/runtime.ts";
import { perSecond } from "../lib/stats.ts";

/**
 * Scenario 7 on PostgreSQL: what this machine's PostgreSQL does through node-postgres (`pg`, the
 * driver underway uses) without a queue library around it, on one connection, with the server's
 * own settings (synchronous_commit as configured). Twice: on a minimal queue table (one partial
 * index), and on underway's own schema (created by the runtime's migrations) with the claim and
 * completion SQL of the PostgreSQL driver. Statements are prepared once (named statements).
 */
export async function limitPostgres(spec: ChildSpec): Promise<RoundResult> {
  // The runtime creates underway's schema in the round's PostgreSQL schema, then steps aside.
  const runtime = await openRuntime(underwayDb(spec), { worker: false, maintenance: false });
  await runtime.stop();

  const { pgUrl: connectionString, pgSchema: schema } = spec.target;
  if (!connectionString || !schema) throw new Error("limit-postgres: the spec names no PostgreSQL URL and schema");
  const client = new pg.Client({ connectionString, application_name: "underway bench limits" });
  await client.connect();
  const budgetMs = spec.budgetMs ?? spec.timeLimitMs / 4;
  try {
    await client.query(`SET search_path TO ${quoteIdentifier(schema)}`);
    await client.query(`
      CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state text NOT NULL DEFAULT 'queued',
                         payload bytea NOT NULL, run_at timestamptz NOT NULL);
      CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state = 'queued';`);
    const minimal = await measurePair(client, spec.count, budgetMs, {
      key: "minimal",
      insert: "INSERT INTO jobs (payload, run_at) VALUES ($1, now())",
      insertArgs: () => [PAYLOAD],
      claim: `
        UPDATE jobs SET state = 'running'
        WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()
                     ORDER BY run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, payload`,
      claimArgs: () => [CLAIM_BATCH],
      done: `
        UPDATE jobs j SET state = 'done' FROM unnest($1::bigint[]) AS d(id)
        WHERE j.id = d.id AND j.state = 'running'`,
      doneArgs: (rows) => [rows.map((r) => r.id)],
      payloadOf: (row) => row.payload,
      countDone: "SELECT count(*)::int AS n FROM jobs WHERE state = 'done'",
    });
    const underway = await measurePair(client, spec.count, budgetMs, {
      key: "schema",
      insert: `
        INSERT INTO underway_tasks (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
          with_user_connection, user_id, user_context, created_at, updated_at)
        VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8, $9, now(), now())`,
      insertArgs: () => ["BenchNoop", "default", 0, PAYLOAD, 5, 300_000, false, null, null],
      // The driver's claim (src/store/postgres/queries.ts), with now() for its clock expression.
      claim: `
        UPDATE underway_tasks SET state = 'running', attempt = attempt + 1, run_seq = run_seq + 1,
          worker_id = $1, started_at = now(), lease_expires_at = now() + $2::float8 * interval '1 millisecond',
          updated_at = now(), progress = NULL, progress_message = NULL
        WHERE id IN (SELECT id FROM underway_tasks
                     WHERE state IN ('queued', 'failed') AND run_at <= now()
                     ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING id::text AS id, name, queue, priority, parameters, attempt, max_attempts, run_seq,
          timeout_ms::float8 AS timeout_ms, with_user_connection, user_id, user_context,
          round(extract(epoch FROM run_at) * 1000)::float8 AS run_at`,
      claimArgs: () => ["bench", 15_000, CLAIM_BATCH],
      // The driver's completion of succeeded runs: one statement per batch, fenced by run_seq.
      done: `
        UPDATE underway_tasks t SET state = 'succeeded', finished_at = now(), updated_at = now(), lease_expires_at = NULL
        FROM unnest($1::bigint[], $2::int[]) AS d(id, run_seq)
        WHERE t.id = d.id AND t.run_seq = d.run_seq AND t.state = 'running'`,
      doneArgs: (rows) => [rows.map((r) => r.id), rows.map((r) => r.run_seq)],
      payloadOf: (row) => row.parameters,
      countDone: "SELECT count(*)::int AS n FROM underway_tasks WHERE state = 'succeeded'",
    });
    const partial = (rows: number): { partial?: string } =>
      rows < spec.count ? { partial: `${rows.toLocaleString("en-US")} of ${spec.count.toLocaleString("en-US")} rows in ${budgetMs / 1000} s` } : {};
    const measurements: Measurement[] = [
      { key: "insert-minimal", label: "INSERT, one commit each (minimal table)", unit: "rows/s", value: minimal.insertRate, ...partial(minimal.rows) },
      { key: "claim-minimal", label: `claim ${CLAIM_BATCH} + decode + mark done (minimal table)`, unit: "rows/s", value: minimal.claimRate },
      { key: "insert-schema", label: "INSERT, one commit each (underway schema)", unit: "rows/s", value: underway.insertRate, ...partial(underway.rows) },
      { key: "claim-schema", label: `claim ${CLAIM_BATCH} + decode + mark done (underway schema)`, unit: "rows/s", value: underway.claimRate },
    ];
    return {
      measurements,
      checks: [`${minimal.rows.toLocaleString("en-US")} and ${underway.rows.toLocaleString("en-US")} rows inserted, each claimed once and marked done`],
      details: {
        rows: spec.count,
        rowsMinimal: minimal.rows,
        rowsSchema: underway.rows,
        claimBatch: CLAIM_BATCH,
        insertMinimalMs: minimal.insertMs,
        claimMinimalMs: minimal.claimMs,
        insertSchemaMs: underway.insertMs,
        claimSchemaMs: underway.claimMs,
      },
    };
  } finally {
    await client.end();
  }
}

interface ClaimedRow {
  id: string;
  run_seq?: number;
  payload?: Uint8Array;
  parameters?: Uint8Array;
}

interface PairSql {
  /** Names the prepared statements. */
  key: string;
  insert: string;
  insertArgs: () => unknown[];
  claim: string;
  claimArgs: () => unknown[];
  done: string;
  doneArgs: (rows: readonly ClaimedRow[]) => unknown[];
  /** The claimed row's encoded parameters, decoded as a worker would before running the task. */
  payloadOf: (row: ClaimedRow) => Uint8Array | undefined;
  countDone: string;
}

/**
 * Inserts `wanted` rows (fewer if `budgetMs` runs out), one autocommitted INSERT each; then claims them CLAIM_BATCH at a time
 * (one autocommitted UPDATE ... RETURNING per claim), decodes each claimed row's MessagePack
 * payload, and marks each claimed batch done with one autocommitted UPDATE, as the PostgreSQL
 * driver's completer does.
 */
async function measurePair(client: pg.Client, wanted: number, budgetMs: number, sql: PairSql) {
  let started = monotonicNow();
  const deadline = started + budgetMs;
  let count = 0;
  while (count < wanted && monotonicNow() < deadline) {
    await client.query({ name: `${sql.key}-insert`, text: sql.insert, values: sql.insertArgs() });
    count++;
  }
  const insertMs = monotonicNow() - started;

  let claimed = 0;
  started = monotonicNow();
  for (;;) {
    const { rows } = await client.query<ClaimedRow>({ name: `${sql.key}-claim`, text: sql.claim, values: sql.claimArgs() });
    if (rows.length === 0) break;
    for (const row of rows) decodePayload(sql.payloadOf(row));
    const done = await client.query({ name: `${sql.key}-done`, text: sql.done, values: sql.doneArgs(rows) });
    if (done.rowCount !== rows.length) throw new Error(`raw claim loop: ${done.rowCount} of ${rows.length} claimed rows were marked done`);
    claimed += rows.length;
  }
  const claimMs = monotonicNow() - started;
  if (claimed !== count) throw new Error(`raw claim loop claimed ${claimed} rows of ${count}`);
  const [row] = (await client.query<{ n: number }>(sql.countDone)).rows;
  if (row?.n !== count) throw new Error(`raw claim loop: ${row?.n ?? 0} rows are done, expected ${count}`);
  return { rows: count, insertMs, claimMs, insertRate: perSecond(count, insertMs), claimRate: perSecond(count, claimMs) };
}
