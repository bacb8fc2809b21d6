-- Search reads messages newest first across every room a reader may read
-- and stops at the first page: `seq` is the order messages were stored in,
-- the same for every room (a sequence, so on every node).
ALTER TABLE messages ADD COLUMN seq BIGINT;
UPDATE messages m SET seq = o.n
    FROM (SELECT room, id, row_number() OVER (ORDER BY ts_ms, room, id) AS n FROM messages) o
    WHERE o.room = m.room AND o.id = m.id;
CREATE SEQUENCE messages_seq OWNED BY messages.seq;
SELECT setval('messages_seq', coalesce((SELECT max(seq) FROM messages), 0) + 1, false);
ALTER TABLE messages
    ALTER COLUMN seq SET DEFAULT nextval('messages_seq'),
    ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX messages_by_seq ON messages (seq);

-- The planner's choice between the two indexes rests on how common it
-- thinks a word is; words it keeps no count of are taken as half as common
-- as the least common it counts. A longer list (10 × the target) keeps a
-- rare word from being taken for a common one, and read newest first
-- through the whole table.
ALTER TABLE messages ALTER COLUMN words SET STATISTICS 1000;
