-- The runtime's HMAC over a task's initiator, name and parameters: a row edited by hand fails it.
ALTER TABLE underway_tasks ADD COLUMN initiator_sig TEXT;
