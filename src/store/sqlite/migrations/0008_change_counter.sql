-- The change mark pages poll (taskChangeMark) was the newest updated_at, read through an index
-- that every claim and every completion rewrote. It is now the newest id (inserts) and a counter
-- that every other statement changing tasks moves once, in its own transaction: one row written
-- per transaction instead of an index entry per task. updated_at is still kept on each task.
DROP INDEX underway_tasks_updated;
CREATE TABLE underway_changes (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  n   INTEGER NOT NULL
);
INSERT INTO underway_changes (id, n) VALUES (1, 0);
