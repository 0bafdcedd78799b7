-- Leadership of node-wide duties (maintenance): one holder per name until its term expires.
CREATE TABLE underway_leaders (
  name        TEXT    PRIMARY KEY,
  holder      TEXT    NOT NULL,
  elected_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
