-- Scheduling, composition and observability (issue #9), as in the SQLite store.

-- What a succeeded run returned, MessagePack; NULL when it returned nothing.
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN result bytea;
-- The W3C traceparent of the span that started the task, so its attempts join that trace.
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN trace_context text;
-- The schedule and tick a cron run stands for.
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN schedule_name text;
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN schedule_tick timestamptz;
-- Predecessors a continuation still waits for; while > 0 its run_at is held in the far future.
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN waiting_for integer NOT NULL DEFAULT 0;

-- One task per schedule and tick, whatever the scheduler does: a second insert fails.
CREATE UNIQUE INDEX underway_tasks_schedule_tick ON {{schema}}.underway_tasks (schedule_name, schedule_tick)
  WHERE schedule_name IS NOT NULL;
-- Retention reads ended tasks by age through underway_tasks_finished (state, finished_at) of 0004.

-- A continuation (child) waits for its predecessors (parents). An edge is consumed once its
-- parent has ended. No foreign key on the parent: a deleted parent counts as ended unsuccessfully.
CREATE TABLE {{schema}}.underway_continuations (
  parent_id        bigint  NOT NULL,
  child_id         bigint  NOT NULL REFERENCES {{schema}}.underway_tasks (id) ON DELETE CASCADE,
  -- true: the child runs only if this parent succeeded (else it is canceled); false: whatever the outcome.
  only_on_success  boolean NOT NULL,
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX underway_continuations_child ON {{schema}}.underway_continuations (child_id);

-- Recurring tasks. next_run_at is the next tick to fire; the scheduler advances it with a
-- compare-and-set, so each tick fires once however many nodes try.
CREATE TABLE {{schema}}.underway_schedules (
  name          text        PRIMARY KEY,
  cron          text        NOT NULL,
  time_zone     text        NOT NULL,
  task_name     text        NOT NULL,
  parameters    bytea       NOT NULL,
  queue         text        NOT NULL,
  priority      integer     NOT NULL,
  max_attempts  integer     NOT NULL,
  timeout_ms    bigint      NOT NULL,
  missed        text        NOT NULL CHECK (missed IN ('once', 'skip')),
  paused        boolean     NOT NULL DEFAULT false,
  next_run_at   timestamptz NOT NULL,
  last_tick     timestamptz,
  last_task_id  bigint,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);
