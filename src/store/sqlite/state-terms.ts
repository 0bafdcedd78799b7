/**
 * WHERE terms that let SQLite's planner read a task state's rows through an index. No index holds
 * every state: underway_tasks_state (state, id) holds the states a task rests in (migration
 * 0010), and queued and running tasks are in the partial indexes that the claim and the lease
 * rescuer read. The planner uses a partial index only when the query repeats its WHERE clause, so
 * these terms do.
 */
import { TASK_STATES, type TaskState } from "../../tasks/types.ts";

/** Waiting tasks: the WHERE of underway_tasks_fair and underway_tasks_fair_key (migrations 0006, 0009). */
export const WAITING = "state IN ('queued', 'failed')";
/** The WHERE of underway_tasks_state (migration 0010): failed, succeeded, dead, canceled. */
export const RESTING = "state NOT IN ('queued', 'running')";

/**
 * Every state's count, each part through an index that holds its rows, none through the table:
 * queued ones as the waiting entries less the failed ones.
 */
export const COUNTS_BY_STATE = `SELECT state, count(*) AS n FROM underway_tasks WHERE ${RESTING} GROUP BY state
  UNION ALL SELECT 'running', count(*) FROM underway_tasks WHERE state = 'running'
  UNION ALL SELECT 'queued', (SELECT count(*) FROM underway_tasks WHERE ${WAITING})
    - (SELECT count(*) FROM underway_tasks WHERE ${RESTING} AND state = 'failed')`;

/**
 * One state's rows, through an index: running through underway_tasks_running, queued through
 * underway_tasks_fair or underway_tasks_fair_key (each entry then looked up in the table, as they
 * do not hold the state: a read of n queued ones also reads the failed ones among them), the
 * others through underway_tasks_state. For counts and bounded reads.
 */
export function stateTerm(state: TaskState): string {
  if (state === "running") return "state = 'running'";
  if (state === "queued") return `(${WAITING} AND state = 'queued')`;
  return `(${RESTING} AND state = ${literal(state)})`;
}

/** A list of queued tasks reads them through the claim-order index while at most this many tasks wait. */
export const QUEUED_LIST_BY_INDEX = 1_000;

/**
 * One state's rows in a list newest first (ORDER BY id DESC LIMIT n). Running ones by their ids
 * from their index (given the order, the planner would otherwise read the table backwards until it
 * found enough of them, all of it when they are old). Queued ones, when few tasks wait
 * (`fewWaiting`: at most QUEUED_LIST_BY_INDEX), by their ids from the claim-order index, each
 * looked up for its state; when more wait, by reading the table backwards, where a backlog is
 * (through the index the planner would read and sort every waiting task first). The others as
 * stateTerm, in id order.
 */
export function listStateTerm(state: TaskState, fewWaiting: boolean): string {
  if (state === "queued") return fewWaiting ? `id IN (SELECT id FROM underway_tasks WHERE ${WAITING} AND state = 'queued')` : "state = 'queued'";
  if (state === "running") return "id IN (SELECT id FROM underway_tasks WHERE state = 'running')";
  return stateTerm(state);
}

/** How many tasks wait (queued or failed), counted up to the bound given as its parameter. */
export const WAITING_UP_TO = `SELECT count(*) AS n FROM (SELECT 1 FROM underway_tasks WHERE ${WAITING} LIMIT ?)`;

/** A state as an SQL string literal: one of TASK_STATES, never text from outside. */
function literal(state: TaskState): string {
  if (!TASK_STATES.includes(state)) throw new Error(`unknown task state ${JSON.stringify(state)}; expected one of ${TASK_STATES.join(", ")}`);
  return `'${state}'`;
}
