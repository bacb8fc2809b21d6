-- Messages that change, and search (protocol 1.1).

-- The message as it now stands, in its row, so that a read needs no second
-- query: lists as JSON text (NULL when empty), the last edit's time, and
-- the room's revision of the message's last change (0: never changed).
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN reactions TEXT;
ALTER TABLE messages ADD COLUMN edited_ms INTEGER;
ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
-- Partial: most messages never change, and appends stay off this index.
CREATE INDEX messages_rev ON messages (room, rev) WHERE rev > 0;

-- Each change of a room's messages takes the room's next revision.
ALTER TABLE rooms ADD COLUMN last_rev INTEGER NOT NULL DEFAULT 0;

-- A small number per room: the search index keys a message by
-- num << 40 | id (`messages` has no integer key of its own).
ALTER TABLE rooms ADD COLUMN num INTEGER;
UPDATE rooms SET num = (SELECT n FROM (SELECT name, row_number() OVER (ORDER BY created_ms, name) AS n FROM rooms) AS o WHERE o.name = rooms.name);
CREATE UNIQUE INDEX rooms_num ON rooms (num);
CREATE TRIGGER rooms_num AFTER INSERT ON rooms WHEN NEW.num IS NULL BEGIN
    UPDATE rooms SET num = (SELECT ifnull(max(num), 0) + 1 FROM rooms) WHERE name = NEW.name;
END;

-- Words without case or accents (`cafe` finds `café`). Contentless: the
-- text is in `messages` only, and a deleted or edited message's old words
-- are deleted from the index, not kept in it.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO messages_fts (rowid, body)
    SELECT (r.num << 40) | m.id, m.body FROM messages m JOIN rooms r ON r.name = m.room;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NOT NEW.deleted BEGIN
    INSERT INTO messages_fts (rowid, body)
        VALUES (((SELECT num FROM rooms WHERE name = NEW.room) << 40) | NEW.id, NEW.body);
END;

-- Only when the words change: a reaction leaves the index alone.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages
    WHEN OLD.body IS NOT NEW.body OR OLD.deleted IS NOT NEW.deleted BEGIN
    DELETE FROM messages_fts
        WHERE rowid = ((SELECT num FROM rooms WHERE name = OLD.room) << 40) | OLD.id;
    INSERT INTO messages_fts (rowid, body)
        SELECT ((SELECT num FROM rooms WHERE name = NEW.room) << 40) | NEW.id, NEW.body
        WHERE NOT NEW.deleted;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts
        WHERE rowid = ((SELECT num FROM rooms WHERE name = OLD.room) << 40) | OLD.id;
END;
