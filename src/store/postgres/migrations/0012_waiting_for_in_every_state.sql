-- A continuation's waiting_for now counts its edges not yet consumed in every state: the resolver
-- also counts down a continuation that was canceled while it waited, and a retry of one waits for
-- the predecessors still running. Continuations ended before this kept the count they had when they
-- were canceled (or 0, when a predecessor's outcome canceled them): counted again here.
UPDATE {{schema}}.underway_tasks t
SET waiting_for = (SELECT count(*) FROM {{schema}}.underway_continuations c WHERE c.child_id = t.id)
WHERE state <> 'queued' AND (waiting_for > 0 OR id IN (SELECT child_id FROM {{schema}}.underway_continuations));
