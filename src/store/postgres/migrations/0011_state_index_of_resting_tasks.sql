-- The (state, id) index holds only the states a task rests in: failed (waiting for a retry),
-- succeeded, dead, canceled, as SQLite's does since its migration 0010. A start, a claim and a
-- completion each write a new row version, and so an entry in every index whose WHERE the version
-- meets: queued and running versions no longer take one here. They are found through the indexes
-- that already hold exactly them (underway_tasks_fair: state IN ('queued', 'failed');
-- underway_tasks_running: state = 'running'). Statements by state repeat this WHERE clause with
-- each state as a literal (src/store/state-terms.ts), which is how the planner sees that the
-- partial index serves them.
DROP INDEX {{schema}}.underway_tasks_state;
CREATE INDEX underway_tasks_state ON {{schema}}.underway_tasks (state, id) WHERE state NOT IN ('queued', 'running');
