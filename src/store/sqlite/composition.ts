/**
 * The SQLite side of issue #9: continuations, results, dead-letter requeue, statistics and
 * schedules. Each function runs inside the driver's exclusive lane (the caller's job) and is
 * given the database clock's now.
 */
import type Database from "better-sqlite3";
import {
  checkRetryFilter,
  HELD_RUN_AT_MS,
  parseTaskId,
  type ContinuationSpec,
  type QueueDepth,
  type ScheduleAdvanceParams,
  type ScheduleUpsertParams,
  type TaskRetryFilter,
  type TaskStats,
} from "../driver.ts";
import type { MissedTickPolicy, ScheduleInfo } from "../../tasks/schedules.ts";
import { TASK_STATES, type TaskState } from "../../tasks/types.ts";
import { FAIR_SLOT, RESTING, WAITING } from "./state-terms.ts";

const ENDED = "('succeeded', 'dead', 'canceled')";

/** Inserts the held child with insertRow, then its edges; the caller runs it in a transaction. */
export function insertContinuation(db: Database.Database, childId: string, after: ContinuationSpec): void {
  const parents = [...new Set(after.taskIds)];
  const keys = parents.map((id) => {
    const key = parseTaskId(id);
    if (key === null) throw new Error(`a continuation's predecessor must be a task id, got ${JSON.stringify(id)}`);
    return key;
  });
  const found = new Set(
    (db.prepare(`SELECT id FROM underway_tasks WHERE id IN (${keys.map(() => "?").join(", ")})`).all(...keys) as { id: number }[]).map((r) =>
      String(r.id),
    ),
  );
  const missing = parents.filter((id) => !found.has(String(parseTaskId(id))));
  if (missing.length) throw new Error(`cannot continue after task ${missing.join(", ")}: no such task`);
  db.prepare("UPDATE underway_tasks SET waiting_for = ? WHERE id = ?").run(parents.length, childId);
  const edge = db.prepare("INSERT INTO underway_continuations (parent_id, child_id, only_on_success) VALUES (?, ?, ?)");
  for (const key of keys) edge.run(key, childId, after.onlyOnSuccess ? 1 : 0);
}

/** Consumes the edges whose parent ended or is gone; the caller runs it in a transaction. */
const anyEdgeStatements = new WeakMap<Database.Database, Database.Statement>();

export function resolveContinuations(
  db: Database.Database,
  now: number,
  limit: number,
): { released: number; canceled: number; countedDown: number; consumed: number } {
  // Most completions have no continuation at all: one cached index probe, and nothing else.
  let anyEdge = anyEdgeStatements.get(db);
  if (!anyEdge) anyEdgeStatements.set(db, (anyEdge = db.prepare("SELECT 1 FROM underway_continuations WHERE consumed = 0 LIMIT 1")));
  if (anyEdge.get() === undefined) return { released: 0, canceled: 0, countedDown: 0, consumed: 0 };
  const edges = db
    .prepare(
      `SELECT c.parent_id, c.child_id, c.only_on_success, p.state AS parent_state
       FROM underway_continuations c LEFT JOIN underway_tasks p ON p.id = c.parent_id
       WHERE c.consumed = 0 AND (p.id IS NULL OR p.state IN ${ENDED})
       ORDER BY c.child_id LIMIT ?`,
    )
    .all(limit) as { parent_id: number; child_id: number; only_on_success: number; parent_state: TaskState | null }[];
  // Kept, marked consumed, until the continuation is deleted: retention keeps its parents meanwhile.
  const drop = db.prepare("UPDATE underway_continuations SET consumed = 1 WHERE parent_id = ? AND child_id = ?");
  // A continuation's waiting_for counts its edges not yet consumed, whatever its state: one that was
  // canceled meanwhile is counted down too, so that a retry knows what it still waits for.
  const cancel = db.prepare(
    `UPDATE underway_tasks SET state = 'canceled', waiting_for = waiting_for - 1, finished_at = ?, updated_at = ?, last_error = ?
     WHERE id = ? AND state = 'queued' AND waiting_for > 0`,
  );
  const countDown = db.prepare(
    `UPDATE underway_tasks SET waiting_for = waiting_for - 1, updated_at = ?,
       run_at = CASE WHEN waiting_for = 1 AND state = 'queued' THEN ? ELSE run_at END
     WHERE id = ? AND waiting_for > 0
     RETURNING waiting_for, state`,
  );
  let released = 0;
  let canceled = 0;
  let countedDown = 0;
  for (const e of edges) {
    drop.run(e.parent_id, e.child_id);
    if (e.only_on_success && e.parent_state !== "succeeded") {
      const error = continuationError(String(e.parent_id), e.parent_state, now);
      if (cancel.run(now, now, JSON.stringify(error), e.child_id).changes === 1) {
        canceled++;
        continue;
      }
    }
    const row = countDown.get(now, now, e.child_id) as { waiting_for: number; state: TaskState } | undefined;
    if (row) countedDown++;
    if (row && row.waiting_for === 0 && row.state === "queued") released++;
  }
  return { released, canceled, countedDown, consumed: edges.length };
}

/** Why a continuation was canceled, stored as its last error. */
export function continuationError(parentId: string, parentState: string | null, at: number): { attempt: number; at: number; name: string; message: string } {
  return {
    attempt: 0,
    at,
    name: "ContinuationCanceledError",
    message: `task ${parentId} ${parentState === null ? "was deleted" : `ended ${parentState}`}; this continuation runs only when it succeeds`,
  };
}

export function resultOf(db: Database.Database, id: string): { state: TaskState; result: Uint8Array | null } | null {
  const key = parseTaskId(id);
  if (key === null) return null;
  const row = db.prepare("SELECT state, result FROM underway_tasks WHERE id = ?").get(key) as { state: TaskState; result: Uint8Array | null } | undefined;
  return row ? { state: row.state, result: row.result ? new Uint8Array(row.result) : null } : null;
}

/** Checks a requeue filter's states: only ended-unsuccessfully states can be queued again. */
export function retryMany(db: Database.Database, now: number, given: TaskRetryFilter): number {
  const filter = checkRetryFilter(given);
  const { states } = filter;
  // The retryable states rest (underway_tasks_state).
  const where = [`${RESTING} AND state IN (${states.map(() => "?").join(", ")})`];
  const args: unknown[] = [...states];
  if (filter.name !== undefined) {
    where.push("name = ?");
    args.push(filter.name);
  }
  if (filter.queue !== undefined) {
    where.push("queue = ?");
    args.push(filter.queue);
  }
  if (filter.ids !== undefined) {
    const keys = filter.ids.map(parseTaskId).filter((k): k is bigint => k !== null);
    if (keys.length === 0) return 0;
    where.push(`id IN (${keys.map(() => "?").join(", ")})`);
    args.push(...keys);
  }
  where.push(NOT_STOPPING);
  args.push(now);
  return db
    .prepare(
      `UPDATE underway_tasks SET ${REQUEUE}
       WHERE id IN (SELECT id FROM underway_tasks WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?)`,
    )
    .run(now, now, ...args, filter.limit).changes;
}

/**
 * Of a task: no attempt of it may still run. A task canceled while it ran keeps its lease until
 * the attempt ends (its worker renews it meanwhile and lets it go then; see taskCanceledRunsEnded):
 * queued again or deleted before, a second attempt would run beside the first. A lease that ran
 * out (the worker is gone) no longer holds it. Parameter: now.
 */
export const NOT_STOPPING = "(lease_expires_at IS NULL OR lease_expires_at < ?)";

/**
 * What queuing a failed, dead or canceled task again sets, as a retry and a requeue do. A
 * continuation canceled while it waited waits again for the predecessors that have not ended
 * (waiting_for, which resolveContinuations counts down in every state): held; with none left it
 * is due at once.
 * Parameters: now (the run-at when due), now (updated_at).
 */
export const REQUEUE = `state = 'queued', run_at = CASE WHEN waiting_for > 0 THEN ${HELD_RUN_AT_MS} ELSE ? END,
  updated_at = ?, finished_at = NULL, worker_id = NULL, dedup_key = NULL, max_attempts = max(max_attempts, attempt + 1)`;

/** Waiting and running tasks per queue, each through the partial index that holds them. */
export const QUEUE_DEPTH = `SELECT queue, sum(due) AS due, sum(later) AS later, sum(running) AS running FROM (
    SELECT queue, run_at <= ? AS due, run_at > ? AS later, 0 AS running FROM underway_tasks WHERE ${WAITING}
    UNION ALL SELECT queue, 0, 0, 1 FROM underway_tasks WHERE state = 'running'
  ) GROUP BY queue ORDER BY queue`;

export function queueDepth(db: Database.Database, now: number): QueueDepth[] {
  return db.prepare(QUEUE_DEPTH).all(now, now) as QueueDepth[];
}

export function stats(db: Database.Database, now: number, windowMs: number): TaskStats {
  const counts = db.prepare("SELECT name, state, count(*) AS count FROM underway_tasks GROUP BY name, state ORDER BY name, state").all() as {
    name: string;
    state: TaskState;
    count: number;
  }[];
  // One index range per ended state (underway_tasks_finished: state, finished_at).
  const ended = db
    .prepare(
      `SELECT (finished_at / 60000) * 60000 AS minute, state, count(*) AS count FROM underway_tasks
       WHERE state IN ${ENDED} AND finished_at >= ? GROUP BY minute, state ORDER BY minute, state`,
    )
    .all(now - windowMs) as { minute: number; state: TaskState; count: number }[];
  return { counts: counts.filter((c) => TASK_STATES.includes(c.state)), ended, now };
}

interface ScheduleRow {
  name: string;
  cron: string;
  time_zone: string;
  task_name: string;
  queue: string;
  priority: number;
  max_attempts: number;
  timeout_ms: number;
  missed: MissedTickPolicy;
  paused: number;
  next_run_at: number;
  last_tick: number | null;
  last_task_id: number | null;
}

const SCHEDULE_COLUMNS = `name, cron, time_zone, task_name, queue, priority, max_attempts, timeout_ms, missed, paused,
  next_run_at, last_tick, last_task_id`;

function scheduleOf(row: ScheduleRow): ScheduleInfo {
  return {
    name: row.name,
    cron: row.cron,
    timeZone: row.time_zone,
    taskName: row.task_name,
    queue: row.queue,
    priority: row.priority,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    missed: row.missed,
    paused: row.paused === 1,
    nextRunAt: row.next_run_at >= HELD_RUN_AT_MS ? null : new Date(row.next_run_at),
    lastTick: row.last_tick === null ? null : new Date(row.last_tick),
    lastTaskId: row.last_task_id === null ? null : String(row.last_task_id),
  };
}

export function scheduleUpsert(db: Database.Database, now: number, p: ScheduleUpsertParams): void {
  db.prepare(
    `INSERT INTO underway_schedules (name, cron, time_zone, task_name, parameters, queue, priority, max_attempts, timeout_ms,
       missed, next_run_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET
       next_run_at = CASE WHEN underway_schedules.cron = excluded.cron AND underway_schedules.time_zone = excluded.time_zone
                          THEN underway_schedules.next_run_at ELSE excluded.next_run_at END,
       cron = excluded.cron, time_zone = excluded.time_zone, task_name = excluded.task_name,
       parameters = excluded.parameters, queue = excluded.queue, priority = excluded.priority,
       max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, missed = excluded.missed,
       updated_at = excluded.updated_at`,
  ).run(
    p.name,
    p.cron,
    p.timeZone,
    p.taskName,
    p.parameters,
    p.queue,
    p.priority,
    p.maxAttempts,
    p.timeoutMs,
    p.missed,
    p.nextRunAtMs ?? HELD_RUN_AT_MS,
    now,
    now,
  );
}

export function scheduleList(db: Database.Database): ScheduleInfo[] {
  return (db.prepare(`SELECT ${SCHEDULE_COLUMNS} FROM underway_schedules ORDER BY name`).all() as ScheduleRow[]).map(scheduleOf);
}

export function scheduleListDue(db: Database.Database, atMs: number, limit: number): ScheduleInfo[] {
  return (
    db
      .prepare(`SELECT ${SCHEDULE_COLUMNS} FROM underway_schedules WHERE paused = 0 AND next_run_at <= ? ORDER BY next_run_at LIMIT ?`)
      .all(atMs, limit) as ScheduleRow[]
  ).map(scheduleOf);
}

/** The compare-and-set and the tick's task; the caller runs it in a transaction. */
export function scheduleAdvance(db: Database.Database, now: number, p: ScheduleAdvanceParams): { advanced: boolean; taskId: string | null } {
  const moved = db
    .prepare(
      `UPDATE underway_schedules SET next_run_at = ?, last_tick = coalesce(?, last_tick), updated_at = ?
       WHERE name = ? AND next_run_at = ? AND paused = 0`,
    )
    .run(p.nextRunAtMs ?? HELD_RUN_AT_MS, p.fireTickMs, now, p.name, p.expectedNextRunAtMs).changes;
  if (moved === 0) return { advanced: false, taskId: null };
  if (p.fireTickMs === null) return { advanced: true, taskId: null };
  // Its fair-share slot as any task's without a user (fair key ''): not before the head of its
  // priority's queue, so that tasks started while it waits do not go ahead of those waiting.
  const { priority } = db.prepare("SELECT priority FROM underway_schedules WHERE name = ?").get(p.name) as { priority: number };
  const inserted = db
    .prepare(
      `INSERT INTO underway_tasks (name, queue, priority, parameters, run_at, max_attempts, timeout_ms, created_at, updated_at,
         schedule_name, schedule_tick, fair_key, fair_slot)
       SELECT task_name, queue, priority, parameters, ?, max_attempts, timeout_ms, ?, ?, name, ?, '', ${FAIR_SLOT}
       FROM underway_schedules WHERE name = ?`,
    )
    .run(now, now, now, p.fireTickMs, priority, "", priority, p.name);
  const taskId = String(inserted.lastInsertRowid);
  db.prepare("UPDATE underway_schedules SET last_task_id = ? WHERE name = ?").run(taskId, p.name);
  return { advanced: true, taskId };
}

export function scheduleSetPaused(db: Database.Database, now: number, p: { name: string; paused: boolean; nextRunAtMs?: number | null }): boolean {
  if (p.paused) return db.prepare("UPDATE underway_schedules SET paused = 1, updated_at = ? WHERE name = ?").run(now, p.name).changes === 1;
  return (
    db
      .prepare(
        "UPDATE underway_schedules SET paused = 0, next_run_at = coalesce(?, next_run_at), updated_at = ? WHERE name = ?",
      )
      .run(p.nextRunAtMs === undefined ? null : (p.nextRunAtMs ?? HELD_RUN_AT_MS), now, p.name).changes === 1
  );
}

export function scheduleDelete(db: Database.Database, name: string): boolean {
  return db.prepare("DELETE FROM underway_schedules WHERE name = ?").run(name).changes === 1;
}
