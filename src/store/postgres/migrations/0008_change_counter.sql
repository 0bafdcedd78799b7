-- Deletes move the change mark pages poll (taskChangeMark): a deleted task leaves no newer
-- updated_at or id behind. Only deletes write this row (one per statement), so it is no point of
-- contention for claims and completions, which the mark sees through updated_at.
CREATE TABLE {{schema}}.underway_changes (
  id  integer PRIMARY KEY CHECK (id = 1),
  n   bigint  NOT NULL
);
INSERT INTO {{schema}}.underway_changes (id, n) VALUES (1, 0);
