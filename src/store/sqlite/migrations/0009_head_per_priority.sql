-- Fair-share slots order tasks within a priority only. A new task's slot now follows its user's
-- waiting tasks of the same priority (they were looked up across priorities, so a user's backlog
-- at one priority pushed back their task at another) and never precedes the head of its own
-- priority's queue, read as the first entry of that priority in the claim-order index
-- (underway_tasks_fair), rather than the smallest waiting slot of any priority. The index that
-- found that one (one more b-tree written by every insert and every claim) goes; each user's
-- last slot is looked up per priority.
--
-- Upgrading: processes of an earlier version that use this database name the dropped index in
-- their inserts; stop them before a process of this version migrates the database.
DROP INDEX underway_tasks_fair_head;
DROP INDEX underway_tasks_fair_key;
CREATE INDEX underway_tasks_fair_key ON underway_tasks (fair_key, priority, fair_slot) WHERE state IN ('queued', 'failed');
