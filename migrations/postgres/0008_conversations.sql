-- Messages that change, and search (protocol 1.1).

-- The message as it now stands, in its row, so that a read needs no second
-- query: lists as JSON text (NULL when empty), the last edit's time, and
-- the room's revision of the message's last change (0: never changed).
ALTER TABLE messages
    ADD COLUMN reply_to BIGINT,
    ADD COLUMN mentions TEXT,
    ADD COLUMN reactions TEXT,
    ADD COLUMN edited_ms BIGINT,
    ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
-- Partial: most messages never change, and appends stay off this index.
CREATE INDEX messages_rev ON messages (room, rev) WHERE rev > 0;

-- Each change of a room's messages takes the room's next revision, under
-- the room row's lock.
ALTER TABLE rooms ADD COLUMN last_rev BIGINT NOT NULL DEFAULT 0;

-- Words without case or accents (`cafe` finds `café`). unaccent is a
-- trusted extension (PostgreSQL 13+): the database's owner may create it.
-- unaccent() itself is only STABLE (its dictionary could change); this
-- wrapper names the dictionary so that an index may use it.
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;
CREATE FUNCTION causerie_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$;

-- Kept in the row rather than an expression index: a search in a room
-- that reads its newest messages first checks each against the stored
-- words instead of parsing its body again.
ALTER TABLE messages ADD COLUMN words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, causerie_unaccent(body))) STORED;
CREATE INDEX messages_words ON messages USING gin (words);
