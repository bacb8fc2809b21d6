-- Rooms keep the last id they handed out, so ids stay dense and per room.
-- The writer bumps last_id inside the committing transaction: the row lock
-- orders the writers of every node, so ids stay unique and increasing.
CREATE TABLE rooms (
    name       TEXT PRIMARY KEY NOT NULL,
    last_id    BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    active_ms  BIGINT NOT NULL
);
CREATE INDEX rooms_active ON rooms (active_ms DESC, name);

CREATE TABLE messages (
    room   TEXT NOT NULL,
    id     BIGINT NOT NULL,
    author TEXT NOT NULL,
    body   TEXT NOT NULL,
    ts_ms  BIGINT NOT NULL,
    nonce  TEXT,
    PRIMARY KEY (room, id)
);

-- A retried send (same author, same nonce) finds the first one.
CREATE UNIQUE INDEX messages_author_nonce ON messages (author, nonce) WHERE nonce IS NOT NULL;

INSERT INTO rooms (name, last_id, created_ms, active_ms) VALUES
    ('general', 0, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    ('random', 0, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - 1);
