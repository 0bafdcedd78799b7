-- The change mark pages poll (taskChangeMark) no longer reads the newest updated_at: the index it
-- read took a new entry on every claim and every completion (they change the state, so PostgreSQL
-- cannot update the row in place and writes a new entry in every index), one of five per transition. The mark is now the newest id (inserts), a
-- digest of the running tasks read through underway_tasks_running (claims, outcomes, rescues,
-- progress), and the counter of 0008, which every other statement changing tasks moves once
-- (cancel, retry, continuations, deletes). updated_at is still kept on each task.
DROP INDEX {{schema}}.underway_tasks_updated;
