-- What each account has read of each room, and how much of it they want
-- to be told of: the same on every device (PROTOCOL.md, "Reading,
-- notifications"). No row: nothing read, and the room kind's default level.
CREATE TABLE reads (
    account   TEXT NOT NULL,
    room      TEXT NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    last_read INTEGER NOT NULL DEFAULT 0,
    -- 'all', 'mentions' or 'none'; NULL: the default.
    notify    TEXT,
    PRIMARY KEY (account, room)
);
