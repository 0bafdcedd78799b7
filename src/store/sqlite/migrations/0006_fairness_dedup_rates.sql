-- Fair share, deduplication and rate limits (isolation issue).

-- Fair share: each task gets a slot in a virtual timeline when it is stored. A user's tasks take
-- consecutive slots after their own waiting ones, but never before the head of the whole queue,
-- so one user's 10,000 tasks and another user's one task interleave instead of queueing behind
-- each other. Among due tasks of one priority, the lowest slot runs first.
ALTER TABLE underway_tasks ADD COLUMN fair_key TEXT NOT NULL DEFAULT '';
ALTER TABLE underway_tasks ADD COLUMN fair_slot INTEGER NOT NULL DEFAULT 0;
-- Claim order.
CREATE INDEX underway_tasks_fair ON underway_tasks (priority DESC, fair_slot, id)
  WHERE state IN ('queued', 'failed');
-- The head of the queue (the smallest waiting slot), and each user's last waiting slot.
CREATE INDEX underway_tasks_fair_head ON underway_tasks (fair_slot) WHERE state IN ('queued', 'failed') AND fair_slot >= 0;
CREATE INDEX underway_tasks_fair_key ON underway_tasks (fair_key, fair_slot) WHERE state IN ('queued', 'failed');

-- Deduplication: at most one waiting or running task per key. A key given with "until started"
-- is released when its task starts (the claim clears it).
ALTER TABLE underway_tasks ADD COLUMN dedup_key TEXT;
ALTER TABLE underway_tasks ADD COLUMN dedup_until_start INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX underway_tasks_dedup ON underway_tasks (dedup_key)
  WHERE dedup_key IS NOT NULL AND state IN ('queued', 'failed', 'running');

-- Rate limits per task name: starts counted in fixed windows, shared by every worker.
CREATE TABLE underway_rate_windows (
  name          TEXT    PRIMARY KEY,
  window_start  INTEGER NOT NULL,
  used          INTEGER NOT NULL
);
