-- Search reads one index newest first across every room a reader may read,
-- and stops at the first page: the index is keyed by `seq`, the order the
-- writer stored the messages in, the same for every room. The room is a
-- token of its own column ('r' || rooms.num), so that a reader of a few
-- rooms has the index intersect them with the words.

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;

ALTER TABLE messages ADD COLUMN seq INTEGER;
UPDATE messages SET seq = o.n
    FROM (SELECT room, id, row_number() OVER (ORDER BY ts_ms, room, id) AS n FROM messages) AS o
    WHERE o.room = messages.room AND o.id = messages.id;
CREATE UNIQUE INDEX messages_seq ON messages (seq);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    room,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO messages_fts (rowid, body, room)
    SELECT m.seq, m.body, 'r' || r.num FROM messages m JOIN rooms r ON r.name = m.room
    WHERE NOT m.deleted;

-- The writer indexes the messages it appends itself, a batch in one
-- statement; edits and deletions, rare, keep the index in step here.
-- Only when the words change: a reaction leaves the index alone.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages
    WHEN OLD.body IS NOT NEW.body OR OLD.deleted IS NOT NEW.deleted BEGIN
    DELETE FROM messages_fts WHERE rowid = OLD.seq;
    INSERT INTO messages_fts (rowid, body, room)
        SELECT NEW.seq, NEW.body, 'r' || (SELECT num FROM rooms WHERE name = NEW.room)
        WHERE NOT NEW.deleted;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = OLD.seq;
END;
