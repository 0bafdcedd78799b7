/**
 * The SQL of the web application's task centre for PostgreSQL (see the block at the end of
 * StorageDriver). Kept beside queries.ts: the same conventions, one statement per operation.
 */

import { stateLiteral, stateTerm } from "../state-terms.ts";
import { TASK_STATES } from "../../tasks/types.ts";

/** The database clock: now() truncated to the ms, plus the offset $1. */
const NOW = `(date_trunc('milliseconds', now()) + $1::float8 * interval '1 millisecond')`;

/** A timestamptz as ms since the epoch. */
const ms = (expr: string): string => `round(extract(epoch FROM ${expr}) * 1000)::float8`;

/** The SQL of one store, `schema` already quoted. */
export function taskCentreQueriesFor(schema: string) {
  const tasks = `${schema}.underway_tasks`;
  const errors = `${schema}.underway_task_errors`;
  return {
    /** Returns { parameters }. $1 id. */
    parameters: `SELECT parameters FROM ${tasks} WHERE id = $1::bigint`,

    /**
     * Returns { state, n } for every state, each counted up to $1: one bounded range of the index
     * that holds the state's rows (stateTerm), as the partial indexes need the state as a literal.
     */
    countsUpTo: TASK_STATES.map(
      (state) => `SELECT ${stateLiteral(state)} AS state, (SELECT count(*)::int FROM (SELECT 1 FROM ${tasks} WHERE ${stateTerm(state)} LIMIT $1) c) AS n`,
    ).join("\n      UNION ALL "),

    /** As countsUpTo, the tasks of user $3 only. */
    countsUpToOfUser: `
      SELECT s.state, (SELECT count(*)::int FROM (SELECT 1 FROM ${tasks} t WHERE t.user_id = $3 AND t.state = s.state LIMIT $1) c) AS n
      FROM unnest($2::text[]) AS s(state)`,

    /**
     * Returns { mark }: the newest id (inserts); the running tasks, each run by its id and run_seq
     * (claims, outcomes, rescues), with their progress; the counter every other change moves (see
     * migration 0009); and the server's count of rows inserted into the table. Ids come from a
     * sequence before their transaction commits, so a task inserted in a transaction that commits
     * after a newer id was seen moves no newest id: the count moves once the server's statistics
     * have it (when the inserting session ends its transaction, or within a second of it). Index
     * ranges only: the primary key's end, underway_tasks_running, one row, one statistics entry.
     */
    changeMark: `
      SELECT coalesce((SELECT max(id) FROM ${tasks}), 0)::text || ':' ||
             (SELECT count(*)::text || '/' || coalesce(sum(hashint8(id) # run_seq), 0)::text || '/' ||
                     coalesce(sum(progress), 0)::text
              FROM ${tasks} WHERE state = 'running') || ':' ||
             (SELECT n::text FROM ${schema}.underway_changes WHERE id = 1) || ':' ||
             coalesce(pg_stat_get_tuples_inserted('${tasks}'::regclass), 0)::text AS mark`,

    /** Returns { now } in ms. $1 offset. */
    now: `SELECT ${ms(NOW)} AS now`,

    /** Returns { b, n }: succeeded tasks per bucket. $1 from (ms), $2 bucket ms, $3 user or null. */
    succeededBuckets: (byUser: boolean): string => `
      SELECT floor((${ms("t.finished_at")} - $1::float8) / $2::float8)::int AS b, count(*)::int AS n FROM ${tasks} t
      WHERE t.state = 'succeeded' AND t.finished_at >= to_timestamp($1::float8 / 1000) ${byUser ? "AND t.user_id = $3" : ""}
      GROUP BY 1`,

    /** Returns { b, n }: failed attempts per bucket. $1 from (ms), $2 bucket ms, $3 user or null. */
    failedBuckets: (byUser: boolean): string => `
      SELECT floor((${ms("e.at")} - $1::float8) / $2::float8)::int AS b, count(*)::int AS n FROM ${errors} e
      ${byUser ? `JOIN ${tasks} t ON t.id = e.task_id` : ""}
      WHERE e.at >= to_timestamp($1::float8 / 1000) ${byUser ? "AND t.user_id = $3" : ""}
      GROUP BY 1`,
  };
}
