-- Scheduling, composition and observability (issue #9).

-- What a succeeded run returned, MessagePack; NULL when it returned nothing.
ALTER TABLE underway_tasks ADD COLUMN result BLOB;
-- The W3C traceparent of the span that started the task, so its attempts join that trace.
ALTER TABLE underway_tasks ADD COLUMN trace_context TEXT;
-- The schedule and tick (ms) a cron run stands for.
ALTER TABLE underway_tasks ADD COLUMN schedule_name TEXT;
ALTER TABLE underway_tasks ADD COLUMN schedule_tick INTEGER;
-- Predecessors a continuation still waits for; while > 0 its run_at is held in the far future.
ALTER TABLE underway_tasks ADD COLUMN waiting_for INTEGER NOT NULL DEFAULT 0;

-- One task per schedule and tick, whatever the scheduler does: a second insert fails.
CREATE UNIQUE INDEX underway_tasks_schedule_tick ON underway_tasks (schedule_name, schedule_tick)
  WHERE schedule_name IS NOT NULL;
-- Retention reads ended tasks by age through underway_tasks_finished (state, finished_at) of 0004.

-- A continuation (child) waits for its predecessors (parents). An edge is consumed once its
-- parent has ended. No foreign key on the parent: a deleted parent counts as ended unsuccessfully.
CREATE TABLE underway_continuations (
  parent_id        INTEGER NOT NULL,
  child_id         INTEGER NOT NULL REFERENCES underway_tasks (id) ON DELETE CASCADE,
  -- 1: the child runs only if this parent succeeded (else it is canceled); 0: whatever the outcome.
  only_on_success  INTEGER NOT NULL,
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX underway_continuations_child ON underway_continuations (child_id);

-- Recurring tasks. next_run_at is the next tick to fire; the scheduler advances it with a
-- compare-and-set, so each tick fires once however many nodes try.
CREATE TABLE underway_schedules (
  name          TEXT    PRIMARY KEY,
  cron          TEXT    NOT NULL,
  time_zone     TEXT    NOT NULL,
  task_name     TEXT    NOT NULL,
  parameters    BLOB    NOT NULL,
  queue         TEXT    NOT NULL,
  priority      INTEGER NOT NULL,
  max_attempts  INTEGER NOT NULL,
  timeout_ms    INTEGER NOT NULL,
  missed        TEXT    NOT NULL CHECK (missed IN ('once', 'skip')),
  paused        INTEGER NOT NULL DEFAULT 0,
  next_run_at   INTEGER NOT NULL,
  last_tick     INTEGER,
  last_task_id  INTEGER,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
