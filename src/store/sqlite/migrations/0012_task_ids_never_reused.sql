-- Task ids are never given twice. `id INTEGER PRIMARY KEY` alone takes the largest id in the
-- table plus one: deleting the newest task (or retention emptying the table) handed its id to the
-- next task, so a saved id or a handle read another task, and an edge left by a deleted parent
-- (underway_continuations.parent_id has no foreign key) pointed at the newcomer. AUTOINCREMENT
-- keeps the largest id ever given in sqlite_sequence. SQLite cannot add it to a table, so the
-- table is rebuilt (SQLite's documented procedure: new table, copy, drop, rename, indexes); the
-- driver runs migrations with foreign keys off, so dropping the old table deletes no errors or
-- edges, and checks the keys before it commits. Columns keep their order.
CREATE TABLE underway_tasks_rebuilt (
  id                   INTEGER PRIMARY KEY AUTOINCREMENT,
  name                 TEXT    NOT NULL,
  queue                TEXT    NOT NULL DEFAULT 'default',
  priority             INTEGER NOT NULL DEFAULT 0,
  state                TEXT    NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'canceled')),
  parameters           BLOB    NOT NULL,
  run_at               INTEGER NOT NULL,
  attempt              INTEGER NOT NULL DEFAULT 0,
  max_attempts         INTEGER NOT NULL CHECK (max_attempts >= 1),
  -- Incremented by every claim, never decreased: the fencing token of a run.
  run_seq              INTEGER NOT NULL DEFAULT 0,
  timeout_ms           INTEGER NOT NULL DEFAULT 0,
  worker_id            TEXT,
  lease_expires_at     INTEGER,
  with_user_connection INTEGER NOT NULL DEFAULT 0,
  user_id              TEXT,
  -- JSON: culture, timeZone, tenant of the initiator.
  user_context         TEXT,
  progress             REAL,
  progress_message     TEXT,
  -- JSON: { attempt, at, name, message, stack } of the last failed attempt.
  last_error           TEXT,
  created_at           INTEGER NOT NULL,
  started_at           INTEGER,
  finished_at          INTEGER,
  updated_at           INTEGER NOT NULL,
  initiator_sig        TEXT,
  result               BLOB,
  trace_context        TEXT,
  schedule_name        TEXT,
  schedule_tick        INTEGER,
  waiting_for          INTEGER NOT NULL DEFAULT 0,
  fair_key             TEXT    NOT NULL DEFAULT '',
  fair_slot            INTEGER NOT NULL DEFAULT 0,
  dedup_key            TEXT,
  dedup_until_start    INTEGER NOT NULL DEFAULT 0
);

INSERT INTO underway_tasks_rebuilt (
  id, name, queue, priority, state, parameters, run_at, attempt, max_attempts, run_seq, timeout_ms,
  worker_id, lease_expires_at, with_user_connection, user_id, user_context, progress,
  progress_message, last_error, created_at, started_at, finished_at, updated_at, initiator_sig,
  result, trace_context, schedule_name, schedule_tick, waiting_for, fair_key, fair_slot, dedup_key,
  dedup_until_start)
SELECT
  id, name, queue, priority, state, parameters, run_at, attempt, max_attempts, run_seq, timeout_ms,
  worker_id, lease_expires_at, with_user_connection, user_id, user_context, progress,
  progress_message, last_error, created_at, started_at, finished_at, updated_at, initiator_sig,
  result, trace_context, schedule_name, schedule_tick, waiting_for, fair_key, fair_slot, dedup_key,
  dedup_until_start
FROM underway_tasks;

DROP TABLE underway_tasks;
ALTER TABLE underway_tasks_rebuilt RENAME TO underway_tasks;

-- The largest id this store is known to have given: a deleted task's id may survive as an edge's
-- parent or an error row's task. (sqlite_sequence has no key on name: delete, then insert.)
DELETE FROM sqlite_sequence WHERE name = 'underway_tasks';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'underway_tasks', max(
  coalesce((SELECT max(id) FROM underway_tasks), 0),
  coalesce((SELECT max(parent_id) FROM underway_continuations), 0),
  coalesce((SELECT max(child_id) FROM underway_continuations), 0),
  coalesce((SELECT max(task_id) FROM underway_task_errors), 0));

CREATE INDEX underway_tasks_running ON underway_tasks (lease_expires_at)
  WHERE state = 'running';
CREATE INDEX underway_tasks_user ON underway_tasks (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX underway_tasks_user_state ON underway_tasks (user_id, state, id) WHERE user_id IS NOT NULL;
CREATE INDEX underway_tasks_name ON underway_tasks (name, id);
CREATE INDEX underway_tasks_finished ON underway_tasks (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX underway_tasks_schedule_tick ON underway_tasks (schedule_name, schedule_tick)
  WHERE schedule_name IS NOT NULL;
CREATE INDEX underway_tasks_fair ON underway_tasks (priority DESC, fair_slot, id)
  WHERE state IN ('queued', 'failed');
CREATE UNIQUE INDEX underway_tasks_dedup ON underway_tasks (dedup_key)
  WHERE dedup_key IS NOT NULL AND state IN ('queued', 'failed', 'running');
CREATE INDEX underway_tasks_later ON underway_tasks (run_at)
  WHERE state IN ('queued', 'failed') AND run_at > created_at;
CREATE INDEX underway_tasks_fair_key ON underway_tasks (fair_key, priority, fair_slot) WHERE state IN ('queued', 'failed');
CREATE INDEX underway_tasks_state ON underway_tasks (state, id) WHERE state NOT IN ('queued', 'running');
