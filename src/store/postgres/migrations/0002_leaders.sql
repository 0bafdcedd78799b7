-- Leadership of node-wide duties (maintenance): one holder per name until its term expires.
CREATE TABLE {{schema}}.underway_leaders (
  name        text        PRIMARY KEY,
  holder      text        NOT NULL,
  elected_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL
);
