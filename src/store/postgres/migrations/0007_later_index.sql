-- Work that is due later (delayed starts, retries after a backoff): the next run_at in the future
-- arms the worker's timer. A task that is due when it is stored (run_at <= created_at, most of
-- them) is not in this index, so storing and claiming it write one index fewer. Claims read
-- underway_tasks_fair (0006), in claim order; underway_tasks_due is no longer read.
DROP INDEX {{schema}}.underway_tasks_due;
CREATE INDEX underway_tasks_later ON {{schema}}.underway_tasks (run_at)
  WHERE state IN ('queued', 'failed') AND run_at > created_at;
