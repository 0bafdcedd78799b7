-- Indexes of the web application's task centre: each page and count is an index range, however
-- many tasks the table holds.
-- An ordinary user's own tasks by state (counts and the filtered list).
CREATE INDEX underway_tasks_user_state ON {{schema}}.underway_tasks (user_id, state, id) WHERE user_id IS NOT NULL;
-- The list filtered by task type.
CREATE INDEX underway_tasks_name ON {{schema}}.underway_tasks (name, id);
-- The change feed's "newest change" (max(updated_at)).
CREATE INDEX underway_tasks_updated ON {{schema}}.underway_tasks (updated_at);
-- The throughput chart: tasks that ended in the last hour.
CREATE INDEX underway_tasks_finished ON {{schema}}.underway_tasks (state, finished_at) WHERE finished_at IS NOT NULL;
-- The failures chart: attempts that failed in the last hour.
CREATE INDEX underway_task_errors_at ON {{schema}}.underway_task_errors (at);
