-- The (state, id) index holds only the states a task rests in: failed (waiting for a retry),
-- succeeded, dead, canceled. A queued or running task is found through the indexes that already
-- hold exactly those (underway_tasks_fair: state IN ('queued', 'failed'); underway_tasks_running:
-- state = 'running'), so an insert, a claim and a completion each write this b-tree once at most
-- instead of up to twice (a script draining 40,000 no-op tasks: 12-45% more a second). Queries
-- repeat the index's WHERE clause word for word (src/store/sqlite/state-terms.ts), which is how
-- SQLite's planner recognises that a partial index serves them.
DROP INDEX underway_tasks_state;
CREATE INDEX underway_tasks_state ON underway_tasks (state, id) WHERE state NOT IN ('queued', 'running');
