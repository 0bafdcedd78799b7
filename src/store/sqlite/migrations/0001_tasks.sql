-- The task queue. Times are ms since the epoch (the driver's clock); parameters are MessagePack.
CREATE TABLE underway_tasks (
  id                   INTEGER PRIMARY KEY,
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
  updated_at           INTEGER NOT NULL
);

-- Due work, in claim order.
CREATE INDEX underway_tasks_due ON underway_tasks (priority DESC, run_at, id)
  WHERE state IN ('queued', 'failed');
-- Leases to rescue.
CREATE INDEX underway_tasks_running ON underway_tasks (lease_expires_at)
  WHERE state = 'running';
CREATE INDEX underway_tasks_state ON underway_tasks (state, id);
CREATE INDEX underway_tasks_user ON underway_tasks (user_id, id) WHERE user_id IS NOT NULL;

-- One row per failed attempt, for inspection.
CREATE TABLE underway_task_errors (
  task_id   INTEGER NOT NULL REFERENCES underway_tasks (id) ON DELETE CASCADE,
  attempt   INTEGER NOT NULL,
  at        INTEGER NOT NULL,
  name      TEXT    NOT NULL,
  message   TEXT    NOT NULL,
  stack     TEXT,
  PRIMARY KEY (task_id, attempt, at)
);
