-- A continuation's edges are kept, marked consumed, once their parents have ended, until the
-- continuation itself is deleted (ON DELETE CASCADE). Retention keeps a parent while a
-- continuation that has not ended names it: a continuation waiting for several tasks reads
-- them when it runs (a process that awaits tasks does), and a parent that ended days before its
-- sibling must still be there. Only the edges not yet consumed are resolved, through a partial
-- index that holds only them. The table is built anew (every edge stored so far is pending:
-- consumed ones were deleted), which also makes this migration safe to apply twice.
CREATE TABLE underway_continuations_next (
  parent_id        INTEGER NOT NULL,
  child_id         INTEGER NOT NULL REFERENCES underway_tasks (id) ON DELETE CASCADE,
  -- 1: the child runs only if this parent succeeded (else it is canceled); 0: whatever the outcome.
  only_on_success  INTEGER NOT NULL,
  -- 1 once the parent's end was counted for the child.
  consumed         INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (parent_id, child_id)
);
INSERT INTO underway_continuations_next (parent_id, child_id, only_on_success)
  SELECT parent_id, child_id, only_on_success FROM underway_continuations;
DROP TABLE underway_continuations;
ALTER TABLE underway_continuations_next RENAME TO underway_continuations;
CREATE INDEX underway_continuations_child ON underway_continuations (child_id);
CREATE INDEX underway_continuations_pending ON underway_continuations (parent_id) WHERE consumed = 0;
