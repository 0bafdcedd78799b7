/**
 * SQLite's statements by task state, on the shared terms of ../state-terms.ts (which say why they
 * are written so). SQLite's planner also needs help to list a state newest first: listStateTerm.
 */
import type { TaskState } from "../../tasks/types.ts";
import { RESTING, stateTerm, WAITING } from "../state-terms.ts";

export { RESTING, stateTerm, WAITING };

/**
 * Every state's count, each part through an index that holds its rows, none through the table:
 * queued ones as the waiting entries less the failed ones.
 */
export const COUNTS_BY_STATE = `SELECT state, count(*) AS n FROM underway_tasks WHERE ${RESTING} GROUP BY state
  UNION ALL SELECT 'running', count(*) FROM underway_tasks WHERE state = 'running'
  UNION ALL SELECT 'queued', (SELECT count(*) FROM underway_tasks WHERE ${WAITING})
    - (SELECT count(*) FROM underway_tasks WHERE ${RESTING} AND state = 'failed')`;

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

/**
 * A new task's fair-share slot: after its user's own waiting tasks of its priority, never before
 * the head of its priority's queue (the first waiting task of that priority in claim order; with
 * none waiting, the newest task's slot). Slots order tasks within a priority only, so other
 * priorities' tasks do not matter. Parameters: the priority, the key, the priority.
 */
export const FAIR_SLOT = `max(
    coalesce((SELECT fair_slot FROM underway_tasks INDEXED BY underway_tasks_fair WHERE ${WAITING} AND priority = ?
              ORDER BY priority DESC, fair_slot, id LIMIT 1),
             (SELECT fair_slot FROM underway_tasks ORDER BY id DESC LIMIT 1), 0),
    coalesce((SELECT max(fair_slot) + 1 FROM underway_tasks INDEXED BY underway_tasks_fair_key
              WHERE fair_key = ? AND priority = ? AND ${WAITING}), 0))`;
