-- A team's own space: roles, bans, private rooms and their members,
-- topics, invite links, and guest names an admin blocked for a while.

-- 'admin' or 'member'; the oldest account of a server from before roles
-- becomes its admin, as the first account of a new server does.
ALTER TABLE accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE accounts ADD COLUMN banned_ms BIGINT;
ALTER TABLE accounts ADD COLUMN last_seen_ms BIGINT;
UPDATE accounts SET role = 'admin'
    WHERE name = (SELECT name FROM accounts ORDER BY created_ms, name LIMIT 1);

ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';

-- Members of private rooms (`~name`); direct rooms name theirs.
CREATE TABLE room_members (
    room     TEXT NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    added_ms BIGINT NOT NULL,
    PRIMARY KEY (room, name)
);
CREATE INDEX room_members_name ON room_members (name);

-- Invite links: the code is the link's secret; an admin may copy it again
-- while it is live, and revoke it.
CREATE TABLE invites (
    code       TEXT PRIMARY KEY NOT NULL,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    uses_left  BIGINT NOT NULL,
    used       BIGINT NOT NULL DEFAULT 0,
    revoked_ms BIGINT
);

-- Guest names an admin blocked, by name key, until a time.
CREATE TABLE guest_blocks (
    name_key TEXT PRIMARY KEY NOT NULL,
    until_ms BIGINT NOT NULL
);
