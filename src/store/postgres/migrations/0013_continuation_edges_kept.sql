-- A continuation's edges are kept, marked consumed, once their parents have ended, until the
-- continuation itself is deleted (ON DELETE CASCADE). Retention keeps a parent while a
-- continuation that has not ended names it: a continuation waiting for several tasks reads
-- them when it runs (a process that awaits tasks does), and a parent that ended days before its
-- sibling must still be there. Only the edges not yet consumed are resolved, through a partial
-- index that holds only them.
ALTER TABLE {{schema}}.underway_continuations ADD COLUMN IF NOT EXISTS consumed boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS underway_continuations_pending ON {{schema}}.underway_continuations (parent_id) WHERE NOT consumed;
