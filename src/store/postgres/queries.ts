/**
 * The queue's SQL for PostgreSQL, one statement per operation: each is one round trip.
 * Every statement that reads the clock takes the driver's clockShift offset, in ms, as $1.
 * Times go out as ms since the epoch (float8, exact for whole ms), ids as decimal text.
 */
import { HAND_OFF_LOOKAHEAD, HELD_RUN_AT_MS } from "../driver.ts";

/** The database clock: now() truncated to the ms, plus the offset $1. */
const NOW = `(date_trunc('milliseconds', now()) + $1::float8 * interval '1 millisecond')`;

/** A timestamptz as ms since the epoch. */
const ms = (expr: string): string => `round(extract(epoch FROM ${expr}) * 1000)::float8`;

/** A number of ms (an expression) as an interval. */
const millis = (expr: string): string => `(${expr}) * interval '1 millisecond'`;

const DUE = `state IN ('queued', 'failed')`;

/** What a claim returns of each task (a ClaimRow). */
const CLAIM_RETURNING = `id::text AS id, name, queue, priority, parameters, attempt, max_attempts, run_seq,
  timeout_ms::float8 AS timeout_ms, with_user_connection, user_id, user_context, ${ms("run_at")} AS run_at,
  initiator_sig, ${ms("started_at")} AS started_at, trace_context, fair_slot::text AS fair_slot`;

/** The head of priority $p's queue: its first waiting task's slot in claim order; with none waiting, the newest task's. */
const headSlot = (tasks: string, p: string): string => `
  coalesce((SELECT fair_slot FROM ${tasks} WHERE ${DUE} AND priority = ${p}
            ORDER BY priority DESC, fair_slot, id LIMIT 1),
           (SELECT fair_slot FROM ${tasks} ORDER BY id DESC LIMIT 1), 0)`;

/** The slot after fair key $k's own waiting tasks of priority $p. */
const ownNextSlot = (tasks: string, p: string, k: string): string => `
  coalesce((SELECT t.fair_slot + 1 FROM ${tasks} t WHERE t.fair_key = ${k} AND t.priority = ${p} AND t.${DUE}
            ORDER BY t.fair_slot DESC LIMIT 1), 0)`;

/** A new task's fair-share slot, as in the insert's own statements: priority $p, fair key $k. */
export const fairSlot = (tasks: string, p: string, k: string): string =>
  `greatest(${headSlot(tasks, p)}, ${ownNextSlot(tasks, p, k)})`;

const LEASE_EXPIRED_MESSAGE = `'worker ' || coalesce(e.worker_id, '?') || ' stopped renewing its lease (it crashed, was killed or hung)'`;

/** The columns of a TaskRow, from the table aliased t. */
const TASK_COLUMNS = `t.id::text AS id, t.name, t.queue, t.priority, t.state, ${ms("t.run_at")} AS run_at, t.attempt,
  t.max_attempts, t.run_seq, t.timeout_ms::float8 AS timeout_ms, t.worker_id,
  ${ms("t.lease_expires_at")} AS lease_expires_at, t.with_user_connection, t.user_id, t.user_context, t.progress,
  t.progress_message, t.last_error, ${ms("t.created_at")} AS created_at, ${ms("t.started_at")} AS started_at,
  ${ms("t.finished_at")} AS finished_at, ${ms("t.updated_at")} AS updated_at, t.waiting_for, t.schedule_name,
  (t.result IS NOT NULL) AS has_result`;

/**
 * A statement changing tasks (with RETURNING) that also moves the change mark of `schema` when
 * it changed any: claims and outcomes show in the mark through the running tasks, every other
 * change through this counter (see migration 0009). `select` is what it returns, over `changed`.
 */
export function markingIn(schema: string, change: string, select: string): string {
  return `
    WITH changed AS (${change}),
    marked AS (UPDATE ${schema}.underway_changes SET n = n + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM changed))
    SELECT ${select} FROM changed`;
}

/**
 * Queues failed, dead or canceled tasks again, as a retry and a requeue do: the tasks that
 * `picked` selects (`SELECT t.id FROM <tasks> t ...`, locking its rows). Returns 1 per task. A
 * continuation canceled while it waited waits again for the predecessors that have not ended
 * (waiting_for, which the resolve statement counts down in every state): held; with none left it
 * is due at once. $1 offset.
 */
export function requeueing(schema: string, picked: string): string {
  return `
    UPDATE ${schema}.underway_tasks k SET state = 'queued',
      run_at = CASE WHEN k.waiting_for > 0 THEN timestamptz 'epoch' + ${millis(String(HELD_RUN_AT_MS))} ELSE ${NOW} END,
      updated_at = ${NOW}, finished_at = NULL, worker_id = NULL, dedup_key = NULL,
      max_attempts = greatest(k.max_attempts, k.attempt + 1)
    WHERE k.id IN (${picked}) AND ${notStopping("k")}
    RETURNING 1`;
}

/**
 * Of a task (alias `t`): no attempt of it may still run. A task canceled while it ran keeps its
 * lease until the attempt ends (its worker renews it meanwhile and lets it go then; see
 * canceledRunsEnded): queued again or deleted before, a second attempt would run beside the
 * first. A lease that ran out (the worker is gone) no longer holds it. Uses $1, the offset.
 */
export function notStopping(t: string): string {
  return `(${t}.lease_expires_at IS NULL OR ${t}.lease_expires_at < ${NOW})`;
}

/** The SQL of one store, `schema` already quoted. */
export function queriesFor(schema: string) {
  const tasks = `${schema}.underway_tasks`;
  const errors = `${schema}.underway_task_errors`;
  /** A DELETE of tasks that also moves the change mark when it deleted any. Returns { n } deleted. */
  const deleting = (del: string): string => marking(`${del} RETURNING 1`, "count(*)::int AS n");
  const edges = `${schema}.underway_continuations`;
  /** Of a task `t` of retention: no continuation of it that has not ended (see deleteFinished). */
  const unresolved = `NOT EXISTS (SELECT 1 FROM ${edges} c JOIN ${tasks} k ON k.id = c.child_id
    WHERE c.parent_id = t.id AND (NOT c.consumed OR k.state NOT IN ('succeeded', 'dead', 'canceled')))`;
  const marking = (change: string, select: string): string => markingIn(schema, change, select);

  /**
   * Claims due tasks in priority, then fair-share order. `filters` are conditions on queue and name
   * with their own parameters ($5 on). Returns ClaimRows. $1 offset, $2 worker, $3 lease ms, $4 limit.
   * Written so that one plan fits every limit, and PostgreSQL keeps it (a generic plan) instead of
   * planning each claim again: the limit is a subquery, which a custom plan cannot fold into a
   * constant either, and the claimed ids are an array, which the update reads through the primary
   * key whatever their number. A one-task claim: 0.6-0.9 ms planned each time, 0.3-0.4 ms without.
   * `unflushed`: the statement is its own transaction, and that transaction's commit does not wait
   * for the WAL to reach the disk (synchronous_commit off for it alone; durability.md says what a
   * server crash can then undo). Evaluated once (an InitPlan) before any row is updated.
   */
  const claim = (filters: readonly string[], unflushed: boolean): string => `
    UPDATE ${tasks} SET state = 'running', attempt = attempt + 1, run_seq = run_seq + 1,
      worker_id = $2, started_at = ${NOW}, lease_expires_at = ${NOW} + ${millis("$3::float8")}, updated_at = ${NOW},
      progress = NULL, progress_message = NULL,
      dedup_key = CASE WHEN dedup_until_start THEN NULL ELSE dedup_key END
    WHERE id = ANY(ARRAY(SELECT id FROM ${tasks}
                         WHERE ${DUE} AND run_at <= ${NOW} ${filters.map((f) => `AND ${f}`).join(" ")}
                         ORDER BY priority DESC, fair_slot, id LIMIT (SELECT $4::int) FOR UPDATE SKIP LOCKED))
      ${unflushed ? "AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'" : ""}
    RETURNING ${CLAIM_RETURNING}`;

  const nextRunAt = (byQueue: boolean): string => `
    SELECT ${ms("min(run_at)")} AS next FROM ${tasks}
    WHERE ${DUE} AND run_at > created_at AND run_at > ${NOW} ${byQueue ? "AND queue = ANY($2::text[])" : ""}`;

  const queries = {
    /** Returns { now }. $1 offset. */
    clockNow: `SELECT ${ms(NOW)} AS now`,

    /**
     * Inserts rows given as parallel arrays, and notifies the schema's channel once, on commit.
     * Returns { ids } in input order: the sorted select draws the identity values in order.
     * $1 offset, $2..$12 the column arrays, $13 the channel, $14 the initiator signatures, $15 the
     * trace contexts, $16 the fair keys; $17 and $18 the call's distinct (fair key, priority)
     * pairs; $19 each row's pair (1-based) and $20 its rank among the call's rows of that pair,
     * from 0. Bulk inserts take no deduplication keys (taskInsertMany refuses them).
     */
    insert: `
      WITH heads AS MATERIALIZED (
        -- The head of each priority's queue in the call (see headSlot): slots order tasks within
        -- a priority only.
        SELECT h.priority, ${headSlot(tasks, "h.priority")} AS v
        FROM (SELECT DISTINCT priority FROM unnest($18::int[]) AS u(priority)) h
      ), pairs AS MATERIALIZED (
        -- Each pair's first slot: after the user's own waiting tasks of the priority, never before
        -- that priority's head. Looked up once per pair in the call, not per task.
        SELECT array_agg(greatest(h.v, ${ownNextSlot(tasks, "p.priority", "p.fair_key")}) ORDER BY p.n) AS first
        FROM unnest($17::text[], $18::int[]) WITH ORDINALITY AS p(fair_key, priority, n) JOIN heads h ON h.priority = p.priority
      ), ins AS (
        INSERT INTO ${tasks} (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
          with_user_connection, user_id, user_context, created_at, updated_at, initiator_sig, trace_context,
          fair_key, fair_slot)
        SELECT i.name, i.queue, i.priority, i.parameters,
               coalesce(timestamptz 'epoch' + ${millis("i.run_at_ms")},
                        ${NOW} + ${millis("greatest(0, coalesce(i.delay_ms, 0))")}),
               i.max_attempts, i.timeout_ms, i.with_user_connection, i.user_id, i.user_context::jsonb, ${NOW}, ${NOW}, i.initiator_sig,
               i.trace_context, i.fair_key, pairs.first[i.pair] + i.rank
        FROM unnest($2::text[], $3::text[], $4::int[], $5::bytea[], $6::float8[], $7::float8[], $8::int[],
                    $9::bigint[], $10::bool[], $11::text[], $12::text[], $14::text[], $15::text[], $16::text[], $19::int[], $20::int[])
             WITH ORDINALITY AS i(name, queue, priority, parameters, run_at_ms, delay_ms, max_attempts, timeout_ms,
                                  with_user_connection, user_id, user_context, initiator_sig, trace_context,
                                  fair_key, pair, rank, ord),
             pairs
        ORDER BY i.ord
        RETURNING id
      ), notified AS (SELECT pg_notify($13, ''))
      SELECT array(SELECT ins.id FROM ins ORDER BY ins.id)::text[] AS ids FROM notified`,

    /**
     * As insert, for one task: the same parameters as scalars in the same places (arrays and
     * unnest cost a single insert more than half its time), with its deduplication key ($17) and
     * whether the key is released when the task starts ($18). Returns { ids }.
     */
    insertOne: `
      WITH ins AS (
        INSERT INTO ${tasks} (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
          with_user_connection, user_id, user_context, created_at, updated_at, initiator_sig, trace_context,
          fair_key, fair_slot, dedup_key, dedup_until_start)
        VALUES ($2::text, $3::text, $4::int, $5::bytea,
          coalesce(timestamptz 'epoch' + ${millis("$6::float8")}, ${NOW} + ${millis("greatest(0, coalesce($7::float8, 0))")}),
          $8::int, $9::bigint, $10::bool, $11::text, $12::text::jsonb, ${NOW}, ${NOW}, $14::text, $15::text, $16::text,
          -- After the user's own waiting tasks of its priority, never before that priority's head (see insert).
          ${fairSlot(tasks, "$4::int", "$16::text")},
          $17::text, $18::bool)
        ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state IN ('queued', 'failed', 'running') DO NOTHING
        RETURNING id
      ), notified AS (SELECT pg_notify($13, ''))
      SELECT array(SELECT ins.id FROM ins)::text[] AS ids FROM notified`,

    /**
     * As insertOne, for a task due now without a deduplication key, handed at once to worker $14
     * (leased for $15 ms) when no other task is due: a due task among the first
     * HAND_OFF_LOOKAHEAD waiting ones in claim order, or that many waiting, keeps it queued (and
     * notified). Returns the ClaimRow and its state. $2..$12 as insertOne's $2..$5, $8..$12,
     * $14, $15; $13 the fair key, $16 the channel.
     */
    insertClaimed: `
      WITH look AS MATERIALIZED (
        SELECT count(*) < ${HAND_OFF_LOOKAHEAD} AND NOT coalesce(bool_or(w.run_at <= ${NOW}), false) AS hand_off
        FROM (SELECT run_at FROM ${tasks} WHERE ${DUE} ORDER BY priority DESC, fair_slot, id LIMIT ${HAND_OFF_LOOKAHEAD}) w
      ), ins AS (
        INSERT INTO ${tasks} (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
          with_user_connection, user_id, user_context, created_at, updated_at, initiator_sig, trace_context,
          fair_key, fair_slot, state, attempt, run_seq, worker_id, started_at, lease_expires_at)
        SELECT $2::text, $3::text, $4::int, $5::bytea, ${NOW}, $6::int, $7::bigint, $8::bool, $9::text, $10::text::jsonb,
          ${NOW}, ${NOW}, $11::text, $12::text, $13::text, ${fairSlot(tasks, "$4::int", "$13::text")},
          CASE WHEN l.hand_off THEN 'running' ELSE 'queued' END,
          CASE WHEN l.hand_off THEN 1 ELSE 0 END,
          CASE WHEN l.hand_off THEN 1 ELSE 0 END,
          CASE WHEN l.hand_off THEN $14::text END,
          CASE WHEN l.hand_off THEN ${NOW} END,
          CASE WHEN l.hand_off THEN ${NOW} + ${millis("$15::float8")} END
        FROM look l
        RETURNING ${CLAIM_RETURNING}, state
      ), notified AS (SELECT pg_notify($16, '') FROM ins WHERE ins.state = 'queued')
      SELECT ins.*, (SELECT count(*) FROM notified)::int AS notified FROM ins`,

    /** The task holding a deduplication key. $1 key. */
    dedupHolder: `SELECT id::text AS id FROM ${tasks} WHERE dedup_key = $1 AND state IN ('queued', 'failed', 'running')`,

    /** Opens (or moves to $2) the rate window of name $1 and locks it until the transaction ends. Returns { used }. */
    rateWindow: `
      INSERT INTO ${schema}.underway_rate_windows AS w (name, window_start, used)
      VALUES ($1, timestamptz 'epoch' + ${millis("$2::float8")}, 0)
      ON CONFLICT (name) DO UPDATE SET
        used = CASE WHEN w.window_start = excluded.window_start THEN w.used ELSE 0 END,
        window_start = excluded.window_start
      RETURNING used`,
    /** Counts $2 more starts in the window of name $1. */
    rateUse: `UPDATE ${schema}.underway_rate_windows SET used = used + $2 WHERE name = $1`,

    claim,

    /**
     * Records outcomes given as parallel arrays (failed ones with their error as JSON text), each
     * only if its run still holds the task, and logs the failed attempts.
     * Returns { ord } of the outcomes applied (1-based). $1 offset, $2..$7 the arrays, $8 the results.
     */
    complete: `
      WITH input AS (
        SELECT * FROM unnest($2::bigint[], $3::int[], $4::text[], $5::int[], $6::text[], $7::float8[], $8::bytea[])
          WITH ORDINALITY AS i(id, run_seq, kind, attempt, error, retry_delay_ms, result, ord)
      ), done AS (
        UPDATE ${tasks} t SET
          state = CASE i.kind WHEN 'succeeded' THEN 'succeeded' WHEN 'released' THEN 'queued'
                  ELSE CASE WHEN i.retry_delay_ms IS NULL THEN 'dead' ELSE 'failed' END END,
          attempt = CASE WHEN i.kind = 'released' THEN t.attempt - 1 ELSE t.attempt END,
          run_at = CASE i.kind WHEN 'succeeded' THEN t.run_at WHEN 'released' THEN ${NOW}
                   ELSE ${NOW} + ${millis("coalesce(i.retry_delay_ms, 0)")} END,
          finished_at = CASE WHEN i.kind = 'succeeded' THEN ${NOW}
                             WHEN i.kind = 'failed' AND i.retry_delay_ms IS NULL THEN ${NOW}
                             WHEN i.kind = 'failed' THEN NULL
                             ELSE t.finished_at END,
          updated_at = ${NOW},
          lease_expires_at = NULL,
          worker_id = CASE WHEN i.kind = 'released' THEN NULL ELSE t.worker_id END,
          started_at = CASE WHEN i.kind = 'released' THEN NULL ELSE t.started_at END,
          result = CASE WHEN i.kind = 'succeeded' THEN i.result ELSE t.result END,
          last_error = CASE WHEN i.kind = 'failed'
                            THEN jsonb_build_object('attempt', i.attempt, 'at', ${ms(NOW)}) || i.error::jsonb
                            ELSE t.last_error END
        FROM input i
        -- Found by id, not through the index of running tasks: the statistics, taken while the
        -- tasks waited, say none runs, and the planner then loops over every outcome for each
        -- running task (500 outcomes: 250,000 rows, 47 ms a statement). The CASE keeps the state
        -- check out of its reach; the id list gives it the primary key.
        WHERE t.id = i.id AND t.run_seq = i.run_seq AND t.id = ANY($2::bigint[]) AND CASE WHEN t.state = 'running' THEN true END
        RETURNING i.ord, i.kind, t.id, i.attempt, i.error,
          EXISTS (SELECT 1 FROM ${edges} c WHERE c.parent_id = t.id AND NOT c.consumed) AS continued
      ), logged AS (
        INSERT INTO ${errors} (task_id, attempt, at, name, message, stack)
        SELECT d.id, d.attempt, ${NOW}, d.error::jsonb ->> 'name', d.error::jsonb ->> 'message', d.error::jsonb ->> 'stack'
        FROM done d WHERE d.kind = 'failed'
        ON CONFLICT (task_id, attempt, at) DO UPDATE
          SET name = excluded.name, message = excluded.message, stack = excluded.stack
      )
      SELECT ord::int AS ord, continued FROM done`,

    /**
     * Renews the leases of the runs (parallel arrays $3 ids, $4 run_seqs) that worker $5 holds.
     * Returns { id, run_seq } of those held. $1 offset, $2 lease ms.
     */
    heartbeat: `
      UPDATE ${tasks} t SET lease_expires_at = ${NOW} + ${millis("$2::float8")}
      FROM unnest($3::bigint[], $4::int[]) AS r(id, run_seq)
      WHERE t.id = r.id AND t.run_seq = r.run_seq AND t.worker_id = $5
        AND t.state IN ('running', 'canceled') AND t.lease_expires_at IS NOT NULL
      RETURNING t.id::text AS id, t.run_seq, t.state = 'canceled' AS canceled`,

    /** Lets go of the leases of canceled tasks' runs that ended (parallel arrays $2 ids, $3 run_seqs). $1 offset. */
    canceledRunsEnded: marking(
      `UPDATE ${tasks} t SET lease_expires_at = NULL, updated_at = ${NOW}
       FROM unnest($2::bigint[], $3::int[]) AS r(id, run_seq)
       WHERE t.id = r.id AND t.run_seq = r.run_seq AND t.state = 'canceled' AND t.lease_expires_at IS NOT NULL
       RETURNING 1`,
      "count(*)::int AS n",
    ),

    /** Sets the progress of a run still holding its task. $1 progress, $2 message, $3 id, $4 run_seq. */
    progress: `
      UPDATE ${tasks} SET progress = $1, progress_message = $2
      WHERE id = $3 AND run_seq = $4 AND state = 'running'`,

    /**
     * Fails (or kills, when its attempts are spent) up to $2 running tasks whose lease expired
     * (or that have none: a row changed by hand, as every claim sets one), skipping those another
     * rescuer holds, and logs a LeaseExpiredError for each.
     * Returns { retried, dead, dead_tasks } (the dead ones' id, name, attempt, message). $1 offset.
     */
    rescue: `
      WITH expired AS (
        SELECT id, attempt, max_attempts, worker_id FROM ${tasks}
        WHERE state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ${NOW})
        ORDER BY lease_expires_at NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED
      ), rescued AS (
        UPDATE ${tasks} t SET
          state = CASE WHEN e.attempt >= e.max_attempts THEN 'dead' ELSE 'failed' END,
          run_at = ${NOW},
          finished_at = CASE WHEN e.attempt >= e.max_attempts THEN ${NOW} END,
          updated_at = ${NOW},
          lease_expires_at = NULL,
          worker_id = NULL,
          last_error = jsonb_build_object('attempt', e.attempt, 'at', ${ms(NOW)}, 'name', 'LeaseExpiredError',
                                          'message', ${LEASE_EXPIRED_MESSAGE})
        FROM expired e
        WHERE t.id = e.id AND t.state = 'running' AND (t.lease_expires_at IS NULL OR t.lease_expires_at < ${NOW})
        RETURNING t.id, t.name, t.state, e.attempt, t.last_error ->> 'message' AS message
      ), logged AS (
        INSERT INTO ${errors} (task_id, attempt, at, name, message, stack)
        SELECT r.id, r.attempt, ${NOW}, 'LeaseExpiredError', r.message, NULL FROM rescued r
        ON CONFLICT (task_id, attempt, at) DO UPDATE
          SET name = excluded.name, message = excluded.message, stack = excluded.stack
      )
      SELECT (count(*) FILTER (WHERE state = 'failed'))::int AS retried,
             (count(*) FILTER (WHERE state = 'dead'))::int AS dead,
             coalesce(json_agg(json_build_object('id', id::text, 'name', name, 'attempt', attempt, 'message', message))
                        FILTER (WHERE state = 'dead'), '[]') AS dead_tasks
      FROM rescued`,

    /** Returns { next }: the earliest run-at not yet due, or null. $1 offset. */
    nextRunAt: nextRunAt(false),
    /** The same, of the queues $2 only. */
    nextRunAtOfQueues: nextRunAt(true),

    /** Returns one TaskRow with its errors, oldest first. $1 id. */
    get: `
      SELECT ${TASK_COLUMNS},
        (SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', e.attempt, 'at', ${ms("e.at")}, 'name', e.name,
                                                      'message', e.message, 'stack', e.stack)
                                   ORDER BY e.at, e.attempt), '[]'::jsonb)
         FROM ${errors} e WHERE e.task_id = t.id) AS errors
      FROM ${tasks} t WHERE t.id = $1`,

    /** Returns TaskRows matching `where` (over t, numbered from $1), newest first, `limit` a placeholder. */
    list: (where: readonly string[], limit: string): string => `
      SELECT ${TASK_COLUMNS} FROM ${tasks} t ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY t.id DESC LIMIT ${limit}`,

    /** Cancels a task that has not ended; returns { previous } (its state before). $1 offset, $2 id. */
    cancel: marking(
      `UPDATE ${tasks} t SET state = 'canceled', finished_at = ${NOW}, updated_at = ${NOW},
         lease_expires_at = CASE WHEN old.state = 'running' THEN t.lease_expires_at END
       FROM (SELECT id, state FROM ${tasks} WHERE id = $2 FOR UPDATE) old
       WHERE t.id = old.id AND old.state IN ('queued', 'failed', 'running')
       RETURNING old.state AS previous`,
      "previous",
    ),

    /** Queues an ended task again. Returns { n } queued (0 or 1). $1 offset, $2 id. */
    retry: marking(requeueing(schema, `SELECT t.id FROM ${tasks} t WHERE t.id = $2 AND t.state IN ('failed', 'dead', 'canceled') FOR UPDATE`), "count(*)::int AS n"),

    /** Deletes a task that is neither running nor stopping, and moves the change mark. Returns { n } deleted. $1 offset, $2 id. */
    delete: deleting(`DELETE FROM ${tasks} t WHERE id = $2 AND state <> 'running' AND ${notStopping("t")}`),

    /**
     * Retention: one range of underway_tasks_finished (state, finished_at) per state, so a pass
     * reads only what it deletes, the oldest first (in that index's order: without it the planner
     * may take the smaller state index and read every task of the state to filter by age). A task
     * stays while a continuation of it has not ended: gone, it would read as deleted, so a
     * continuation that waits for its success would be canceled, and one that reads its
     * predecessors when it runs (a process awaiting several tasks) would not find it.
     * $1 offset, $2 succeeded age ms, $3 failed age ms, $4 limit.
     */
    deleteFinished: deleting(`
      DELETE FROM ${tasks} WHERE id IN (
        SELECT id FROM (
          (SELECT id FROM ${tasks} t WHERE state = 'succeeded' AND finished_at < ${NOW} - ${millis("$2::float8")} AND ${unresolved} ORDER BY finished_at LIMIT $4)
          UNION ALL
          (SELECT id FROM ${tasks} t WHERE state = 'dead' AND finished_at < ${NOW} - ${millis("$3::float8")} AND ${unresolved} ORDER BY finished_at LIMIT $4)
          UNION ALL
          (SELECT id FROM ${tasks} t WHERE state = 'canceled' AND finished_at < ${NOW} - ${millis("$3::float8")} AND ${unresolved} AND ${notStopping("t")}
           ORDER BY finished_at LIMIT $4)
        ) old LIMIT $4)`),

    /** Returns { state, n } per state present. */
    counts: `SELECT state, count(*)::int AS n FROM ${tasks} GROUP BY state`,

    /**
     * Takes or renews a leadership; returns { holder } when $3 holds it afterwards, no row otherwise.
     * $1 offset, $2 name, $3 holder, $4 term in ms.
     */
    elect: `
      INSERT INTO ${schema}.underway_leaders AS l (name, holder, elected_at, expires_at)
      VALUES ($2, $3, ${NOW}, ${NOW} + ${millis("$4::float8")})
      ON CONFLICT (name) DO UPDATE SET
        elected_at = CASE WHEN l.holder = excluded.holder THEN l.elected_at ELSE excluded.elected_at END,
        holder = excluded.holder, expires_at = excluded.expires_at
      WHERE l.holder = excluded.holder OR l.expires_at <= excluded.elected_at
      RETURNING holder`,

    /** Gives up a leadership. $1 name, $2 holder. */
    resign: `DELETE FROM ${schema}.underway_leaders WHERE name = $1 AND holder = $2`,

    /**
     * Refreshes the planner's statistics of the task table's columns that the queue's statements
     * filter and order by, from a sample of 3,000 rows (statistics target 10, for this statement
     * only) rather than 30,000: a sixth of the time of a whole-table ANALYZE at 20,000 rows. The
     * other columns keep theirs until autovacuum's next ANALYZE. One query string, so SET LOCAL
     * holds for the implicit transaction around both statements.
     */
    analyzeTasks: `SET LOCAL default_statistics_target = 10;
      ANALYZE ${tasks} (state, priority, run_at, fair_slot, fair_key, queue, name)`,
    /**
     * The planner's estimate of the waiting tasks (the rows of the claim-order index), and whether
     * this role may ANALYZE the task table (its owner's or the database owner's privileges, or a
     * superuser's; another role's ANALYZE skips the table with a warning). Returns { rows, may }.
     */
    waitingEstimate: `
      SELECT greatest(i.reltuples, 0)::float8 AS rows,
             pg_has_role(t.relowner, 'USAGE')
               OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') AS may
      FROM pg_class i, pg_class t
      WHERE i.oid = '${schema}.underway_tasks_fair'::regclass AND t.oid = '${tasks}'::regclass`,
  };
  return {
    ...queries,
    /**
     * Has a new server process plan the statements of a start, a claim and a completion (see
     * PostgresDriver.warm): each prepared under a name of its own, explained with every parameter
     * NULL (planned, never run), and deallocated. One query string of simple statements.
     */
    warm: [queries.insertOne, queries.insertClaimed, claim([], true), queries.complete, queries.nextRunAt, queries.elect]
      .map((text, i) => {
        const name = `underway_warm_${i}`;
        const parameters = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
        return `PREPARE ${name} AS ${text}; EXPLAIN EXECUTE ${name}(${Array<string>(parameters).fill("NULL").join(", ")}); DEALLOCATE ${name};`;
      })
      .join("\n"),
  };
}

export type Queries = ReturnType<typeof queriesFor>;
