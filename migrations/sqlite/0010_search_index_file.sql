-- The search index moves to a file of its own (PATH.search), kept by a
-- task that follows the message log (src/store/search_index.rs): the
-- writer's transaction no longer indexes. New messages are found by `seq`;
-- edits and deletions are queued here, in the transaction that makes them.

DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;

-- AUTOINCREMENT: an id is never handed out again once the queue is
-- emptied, so the index's "done up to" stays true.
CREATE TABLE search_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL
);

-- Only when the words change: a reaction leaves the index alone.
CREATE TRIGGER search_on_update AFTER UPDATE OF body, deleted ON messages
    WHEN OLD.body IS NOT NEW.body OR OLD.deleted IS NOT NEW.deleted BEGIN
    INSERT INTO search_pending (seq) VALUES (OLD.seq);
END;

CREATE TRIGGER search_on_delete AFTER DELETE ON messages BEGIN
    INSERT INTO search_pending (seq) VALUES (OLD.seq);
END;
