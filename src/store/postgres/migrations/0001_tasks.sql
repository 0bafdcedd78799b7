-- The task queue, as in the SQLite store. {{schema}} is the driver's schema, quoted by the runner.
-- Times are timestamptz truncated to the ms (the driver's clock: now() plus the test offset);
-- parameters are MessagePack.
CREATE TABLE {{schema}}.underway_tasks (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                 text             NOT NULL,
  queue                text             NOT NULL DEFAULT 'default',
  priority             integer          NOT NULL DEFAULT 0,
  state                text             NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'canceled')),
  parameters           bytea            NOT NULL,
  run_at               timestamptz      NOT NULL,
  attempt              integer          NOT NULL DEFAULT 0,
  max_attempts         integer          NOT NULL CHECK (max_attempts >= 1),
  -- Incremented by every claim, never decreased: the fencing token of a run.
  run_seq              integer          NOT NULL DEFAULT 0,
  timeout_ms           bigint           NOT NULL DEFAULT 0,
  worker_id            text,
  lease_expires_at     timestamptz,
  with_user_connection boolean          NOT NULL DEFAULT false,
  user_id              text,
  -- culture, timeZone, tenant of the initiator.
  user_context         jsonb,
  progress             double precision,
  progress_message     text,
  -- { attempt, at (ms since the epoch), name, message, stack } of the last failed attempt.
  last_error           jsonb,
  created_at           timestamptz      NOT NULL,
  started_at           timestamptz,
  finished_at          timestamptz,
  updated_at           timestamptz      NOT NULL
);

-- Due work, in claim order.
CREATE INDEX underway_tasks_due ON {{schema}}.underway_tasks (priority DESC, run_at, id)
  WHERE state IN ('queued', 'failed');
-- Leases to rescue.
CREATE INDEX underway_tasks_running ON {{schema}}.underway_tasks (lease_expires_at)
  WHERE state = 'running';
CREATE INDEX underway_tasks_state ON {{schema}}.underway_tasks (state, id);
CREATE INDEX underway_tasks_user ON {{schema}}.underway_tasks (user_id, id) WHERE user_id IS NOT NULL;

-- One row per failed attempt, for inspection.
CREATE TABLE {{schema}}.underway_task_errors (
  task_id   bigint      NOT NULL REFERENCES {{schema}}.underway_tasks (id) ON DELETE CASCADE,
  attempt   integer     NOT NULL,
  at        timestamptz NOT NULL,
  name      text        NOT NULL,
  message   text        NOT NULL,
  stack     text,
  PRIMARY KEY (task_id, attempt, at)
);
