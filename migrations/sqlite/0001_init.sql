-- Rooms keep the last id they handed out, so ids stay dense and per room.
CREATE TABLE rooms (
    name      TEXT PRIMARY KEY NOT NULL,
    last_id   INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    active_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
    room   TEXT NOT NULL,
    id     INTEGER NOT NULL,
    author TEXT NOT NULL,
    body   TEXT NOT NULL,
    ts_ms  INTEGER NOT NULL,
    nonce  TEXT,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;

-- A retried send (same author, same nonce) finds the first one.
CREATE UNIQUE INDEX messages_author_nonce ON messages (author, nonce) WHERE nonce IS NOT NULL;

INSERT INTO rooms (name, last_id, created_ms, active_ms) VALUES
    ('general', 0, CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    ('random', 0, CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER) - 1);
