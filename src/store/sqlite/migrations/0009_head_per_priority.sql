-- A new task's fair-share slot is placed after the head of its own priority's queue, read as the
-- first entry of that priority in the claim-order index (underway_tasks_fair), rather than after
-- the smallest waiting slot of any priority. Slots order tasks within a priority only, so the
-- other priorities' head never mattered, and the index that found it (one more b-tree written by
-- every insert and every claim) goes.
DROP INDEX underway_tasks_fair_head;
