-- Fair share, deduplication and rate limits (isolation issue). See the SQLite migration of the
-- same number for what each part is for.
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN fair_key text NOT NULL DEFAULT '';
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN fair_slot bigint NOT NULL DEFAULT 0;
CREATE INDEX underway_tasks_fair ON {{schema}}.underway_tasks (priority DESC, fair_slot, id)
  WHERE state IN ('queued', 'failed');
-- "fair_slot >= 0" (always true) keeps the planner from using this index for one user's last slot.
CREATE INDEX underway_tasks_fair_head ON {{schema}}.underway_tasks (fair_slot) WHERE state IN ('queued', 'failed') AND fair_slot >= 0;
CREATE INDEX underway_tasks_fair_key ON {{schema}}.underway_tasks (fair_key, fair_slot) WHERE state IN ('queued', 'failed');

ALTER TABLE {{schema}}.underway_tasks ADD COLUMN dedup_key text;
ALTER TABLE {{schema}}.underway_tasks ADD COLUMN dedup_until_start boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX underway_tasks_dedup ON {{schema}}.underway_tasks (dedup_key)
  WHERE dedup_key IS NOT NULL AND state IN ('queued', 'failed', 'running');

CREATE TABLE {{schema}}.underway_rate_windows (
  name          text        PRIMARY KEY,
  window_start  timestamptz NOT NULL,
  used          integer     NOT NULL
);
