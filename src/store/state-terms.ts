/**
 * WHERE terms that let a store's planner read a task state's rows through an index, shared by
 * the SQLite and PostgreSQL drivers, whose schemas index states alike. No index holds every
 * state: underway_tasks_state (state, id) holds the states a task rests in (SQLite's migration
 * 0010, PostgreSQL's 0011), and queued and running tasks are in the partial indexes that the
 * claim and the lease rescuer read. A planner uses a partial index only when the query implies
 * its WHERE clause, and neither planner can tell that of a state given as a parameter: these
 * terms repeat the clauses word for word, with each state as a literal.
 */
import { TASK_STATES, type TaskState } from "../tasks/types.ts";

/** Waiting tasks (queued, or failed and waiting for a retry): the WHERE of the claim-order indexes. */
export const WAITING = "state IN ('queued', 'failed')";
/** The WHERE of underway_tasks_state: failed, succeeded, dead, canceled. */
export const RESTING = "state NOT IN ('queued', 'running')";

/**
 * One state's rows, through an index: running ones through underway_tasks_running, queued ones
 * through the claim-order indexes (each entry then looked up in the table, as they do not hold the
 * state: a read of n queued ones also reads the failed ones among them), the others through
 * underway_tasks_state.
 */
export function stateTerm(state: TaskState): string {
  if (state === "running") return "state = 'running'";
  if (state === "queued") return `(${WAITING} AND state = 'queued')`;
  return `(${RESTING} AND state = ${stateLiteral(state)})`;
}

/** Rows in any of `states` (at least one), each state's through its index as stateTerm's. */
export function statesTerm(states: readonly TaskState[]): string {
  if (states.length === 0) throw new Error("statesTerm needs at least one state");
  return `(${[...new Set(states)].map(stateTerm).join(" OR ")})`;
}

/** A state as an SQL string literal: one of TASK_STATES, never text from outside. */
export function stateLiteral(state: TaskState): string {
  if (!TASK_STATES.includes(state)) throw new Error(`unknown task state ${JSON.stringify(state)}; expected one of ${TASK_STATES.join(", ")}`);
  return `'${state}'`;
}
