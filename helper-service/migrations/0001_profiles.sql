-- Profiles: the sanctum.conf text (its `secret` line names the key file
-- the service wrote under keys/) and the flags. No key material here.
CREATE TABLE profiles (
    name         TEXT PRIMARY KEY NOT NULL,
    instance     TEXT NOT NULL,
    mode         TEXT NOT NULL,
    config       TEXT NOT NULL,
    auto_connect INTEGER NOT NULL DEFAULT 0,
    always_on    INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL
);

-- The event log: imports, removals, connects, state changes.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    profile TEXT,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
);
