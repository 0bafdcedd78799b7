/**
 * The SQL of issue #9 for PostgreSQL (see the block at the end of StorageDriver): continuations,
 * results, dead-letter requeue, statistics and schedules. Same conventions as queries.ts: one
 * statement per operation; $1 is the clock offset in every statement that reads the clock.
 */
import { fairSlot, markingIn, requeueing } from "./queries.ts";
import { WAITING } from "../state-terms.ts";

/** The database clock: now() truncated to the ms, plus the offset $1. */
const NOW = `(date_trunc('milliseconds', now()) + $1::float8 * interval '1 millisecond')`;

/** A timestamptz as ms since the epoch. */
const ms = (expr: string): string => `round(extract(epoch FROM ${expr}) * 1000)::float8`;

/** ms since the epoch (an expression) as a timestamptz. */
const at = (expr: string): string => `(timestamptz 'epoch' + (${expr}) * interval '1 millisecond')`;

const ENDED = `('succeeded', 'dead', 'canceled')`;

const SCHEDULE_COLUMNS = `name, cron, time_zone, task_name, queue, priority, max_attempts, timeout_ms::float8 AS timeout_ms, missed,
  paused, ${ms("next_run_at")} AS next_run_at, ${ms("last_tick")} AS last_tick, last_task_id::text AS last_task_id`;

/** The SQL of one store, `schema` already quoted. */
export function compositionQueriesFor(schema: string) {
  const tasks = `${schema}.underway_tasks`;
  const edges = `${schema}.underway_continuations`;
  const schedules = `${schema}.underway_schedules`;
  return {
    /** Returns { id } of the predecessors $1 (bigint[]) that exist. */
    parentsFound: `SELECT id::text AS id FROM ${tasks} WHERE id = ANY($1::bigint[])`,

    /** Sets a continuation's count and inserts its edges. $1 child, $2 parents (bigint[]), $3 only on success. */
    continuationEdges: `
      WITH counted AS (UPDATE ${tasks} SET waiting_for = cardinality($2::bigint[]) WHERE id = $1::bigint)
      INSERT INTO ${edges} (parent_id, child_id, only_on_success)
      SELECT p, $1::bigint, $3::boolean FROM unnest($2::bigint[]) AS p`,

    /**
     * Consumes up to $2 edges whose parent ended or is gone (each once: the rows are locked, and a
     * concurrent resolver skips them), then counts their children down or cancels them.
     * Returns { released, canceled }. $1 offset.
     */
    resolve: `
      WITH picked AS (
        SELECT c.parent_id, c.child_id, c.only_on_success, p.state AS parent_state
        FROM ${edges} c LEFT JOIN ${tasks} p ON p.id = c.parent_id
        WHERE NOT c.consumed AND (p.id IS NULL OR p.state IN ${ENDED})
        ORDER BY c.child_id LIMIT $2
        FOR UPDATE OF c SKIP LOCKED
      ), consumed AS (
        -- Kept, marked consumed, until the continuation is deleted: retention keeps its parents meanwhile.
        UPDATE ${edges} c SET consumed = true FROM picked
        WHERE c.parent_id = picked.parent_id AND c.child_id = picked.child_id
        RETURNING picked.*
      ), per_child AS (
        SELECT child_id, count(*)::int AS n,
          min(parent_id) FILTER (WHERE only_on_success AND parent_state IS DISTINCT FROM 'succeeded') AS culprit
        FROM consumed GROUP BY child_id
      ), culprits AS (
        SELECT pc.*, (SELECT c.parent_state FROM consumed c WHERE c.child_id = pc.child_id AND c.parent_id = pc.culprit LIMIT 1) AS culprit_state,
          (SELECT t.state FROM ${tasks} t WHERE t.id = pc.child_id) AS child_state
        FROM per_child pc
      ), changed AS (
        -- waiting_for counts a continuation's edges not yet consumed, whatever its state: one that
        -- was canceled meanwhile is counted down too, so that a retry knows what it still waits for.
        -- No condition on the state, so that a retry committed meanwhile is counted down as well
        -- (the row is then read again as the retry left it); only a queued one is released or canceled.
        UPDATE ${tasks} k SET
          state = CASE WHEN pc.culprit IS NOT NULL AND k.state = 'queued' THEN 'canceled' ELSE k.state END,
          waiting_for = greatest(0, k.waiting_for - pc.n),
          run_at = CASE WHEN pc.culprit IS NULL AND k.state = 'queued' AND k.waiting_for - pc.n <= 0 THEN ${NOW} ELSE k.run_at END,
          finished_at = CASE WHEN pc.culprit IS NOT NULL AND k.state = 'queued' THEN ${NOW} ELSE k.finished_at END,
          last_error = CASE WHEN pc.culprit IS NULL OR k.state <> 'queued' THEN k.last_error
            ELSE jsonb_build_object('attempt', 0, 'at', ${ms(NOW)}, 'name', 'ContinuationCanceledError',
              'message', 'task ' || pc.culprit || ' ' || coalesce('ended ' || pc.culprit_state, 'was deleted')
                || '; this continuation runs only when it succeeds') END,
          updated_at = ${NOW}
        FROM culprits pc
        WHERE k.id = pc.child_id AND k.waiting_for > 0
        RETURNING k.state, k.waiting_for, pc.culprit IS NOT NULL AND pc.child_state = 'queued' AS canceled_now
      ), marked AS (UPDATE ${schema}.underway_changes SET n = n + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM changed))
      SELECT (count(*) FILTER (WHERE state = 'queued' AND waiting_for = 0))::int AS released,
             (count(*) FILTER (WHERE state = 'canceled' AND canceled_now))::int AS canceled,
             (SELECT count(*) FROM consumed)::int AS consumed
      FROM changed`,

    /** Returns { state, result }. $1 id. */
    result: `SELECT state, result FROM ${tasks} WHERE id = $1::bigint`,

    /** Queues again up to `limit` tasks matching `where` (over t). $1 offset. */
    retryMany: (where: readonly string[], limit: string): string =>
      markingIn(
        schema,
        requeueing(schema, `SELECT t.id FROM ${tasks} t WHERE ${where.join(" AND ")} ORDER BY t.id LIMIT ${limit} FOR UPDATE SKIP LOCKED`),
        "count(*)::int AS n",
      ),

    /** Returns QueueDepth rows. $1 offset. */
    queueDepth: `
      SELECT queue,
        (count(*) FILTER (WHERE state IN ('queued', 'failed') AND run_at <= ${NOW}))::int AS due,
        (count(*) FILTER (WHERE state IN ('queued', 'failed') AND run_at > ${NOW}))::int AS later,
        (count(*) FILTER (WHERE state = 'running'))::int AS running
      FROM ${tasks} WHERE (${WAITING} OR state = 'running') GROUP BY queue ORDER BY queue`,

    /** Returns { name, state, count }. */
    counts: `SELECT name, state, count(*)::int AS count FROM ${tasks} GROUP BY name, state ORDER BY name, state`,

    /** Returns { minute, state, count } of tasks ended since now - $2 ms. $1 offset. */
    ended: `
      SELECT ${ms("date_trunc('minute', finished_at)")} AS minute, state, count(*)::int AS count FROM ${tasks}
      WHERE state IN ${ENDED} AND finished_at >= ${NOW} - $2::float8 * interval '1 millisecond'
      GROUP BY 1, 2 ORDER BY 1, 2`,

    /** Returns { now }. $1 offset. */
    now: `SELECT ${ms(NOW)} AS now`,

    /**
     * Creates or updates a schedule; a changed cron or time zone takes the new next tick, paused is kept.
     * $1 offset, $2 name, $3 cron, $4 zone, $5 task, $6 parameters, $7 queue, $8 priority, $9 attempts,
     * $10 timeout, $11 missed, $12 next tick ms.
     */
    upsert: `
      INSERT INTO ${schedules} AS s (name, cron, time_zone, task_name, parameters, queue, priority, max_attempts, timeout_ms,
        missed, next_run_at, created_at, updated_at)
      VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ${at("$12::float8")}, ${NOW}, ${NOW})
      ON CONFLICT (name) DO UPDATE SET
        next_run_at = CASE WHEN s.cron = excluded.cron AND s.time_zone = excluded.time_zone THEN s.next_run_at ELSE excluded.next_run_at END,
        cron = excluded.cron, time_zone = excluded.time_zone, task_name = excluded.task_name,
        parameters = excluded.parameters, queue = excluded.queue, priority = excluded.priority,
        max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, missed = excluded.missed,
        updated_at = excluded.updated_at`,

    /** Returns ScheduleRows by name. */
    list: `SELECT ${SCHEDULE_COLUMNS} FROM ${schedules} ORDER BY name`,

    /** Returns ScheduleRows due at $1 ms, at most $2. */
    due: `SELECT ${SCHEDULE_COLUMNS} FROM ${schedules} WHERE NOT paused AND next_run_at <= ${at("$1::float8")} ORDER BY next_run_at LIMIT $2`,

    /**
     * Compare-and-set of the next tick, and the tick's task when $5 is not null, in one statement:
     * a node that read the same next tick finds the row moved and inserts nothing. Returns
     * { advanced, task_id }. $1 offset, $2 name, $3 expected next ms, $4 new next ms, $5 tick ms, $6 channel.
     */
    advance: `
      WITH moved AS (
        UPDATE ${schedules} SET next_run_at = ${at("$4::float8")},
          last_tick = coalesce(${at("$5::float8")}, last_tick), updated_at = ${NOW}
        WHERE name = $2 AND next_run_at = ${at("$3::float8")} AND NOT paused
        RETURNING name, task_name, queue, priority, parameters, max_attempts, timeout_ms
      ), ins AS (
        -- Its fair-share slot as any task's without a user (fair key ''): not before the head of its
        -- priority's queue, so that tasks started while it waits do not go ahead of those waiting.
        INSERT INTO ${tasks} (name, queue, priority, parameters, run_at, max_attempts, timeout_ms, created_at, updated_at,
          schedule_name, schedule_tick, fair_key, fair_slot)
        SELECT task_name, queue, priority, parameters, ${NOW}, max_attempts, timeout_ms, ${NOW}, ${NOW}, name, ${at("$5::float8")},
          '', ${fairSlot(tasks, "moved.priority", "''")}
        FROM moved WHERE $5::float8 IS NOT NULL
        RETURNING id
      ), notified AS (SELECT pg_notify($6, '') FROM ins)
      SELECT EXISTS (SELECT 1 FROM moved) AS advanced, (SELECT id::text FROM ins) AS task_id,
             (SELECT count(*) FROM notified) AS notified`,

    /** Records the task of the last tick. $1 name, $2 task id. */
    noteTask: `UPDATE ${schedules} SET last_task_id = $2::bigint WHERE name = $1`,

    /** Pauses. $1 offset, $2 name. */
    pause: `UPDATE ${schedules} SET paused = true, updated_at = ${NOW} WHERE name = $2`,
    /** Resumes, with the next tick $3 (ms; null keeps it). $1 offset, $2 name. */
    resume: `UPDATE ${schedules} SET paused = false, next_run_at = coalesce(${at("$3::float8")}, next_run_at), updated_at = ${NOW} WHERE name = $2`,
    /** $1 name. */
    delete: `DELETE FROM ${schedules} WHERE name = $1`,
  };
}

/** A schedule row as the queries above return it. */
export interface ScheduleRow {
  name: string;
  cron: string;
  time_zone: string;
  task_name: string;
  queue: string;
  priority: number;
  max_attempts: number;
  timeout_ms: number;
  missed: "once" | "skip";
  paused: boolean;
  next_run_at: number;
  last_tick: number | null;
  last_task_id: string | null;
}
