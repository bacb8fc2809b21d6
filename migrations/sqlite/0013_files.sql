-- Files (protocol 1.1, "Files"): each stored once per content.

-- What a file is. `thumb` is its thumbnail's media type (images only);
-- `touched_ms` moves on each upload of the same bytes, so that the sweep
-- leaves a file alone while an upload may be counting on it.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    mime       TEXT NOT NULL,
    width      INTEGER,
    height     INTEGER,
    thumb      TEXT,
    created_ms INTEGER NOT NULL,
    touched_ms INTEGER NOT NULL
);

-- Uploads not yet sent: the uploader may read and attach them, and they
-- go after a day.
CREATE TABLE file_uploads (
    file_id    TEXT NOT NULL,
    account    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (file_id, account)
);
CREATE INDEX file_uploads_account ON file_uploads (account);
CREATE INDEX file_uploads_created ON file_uploads (created_ms);

-- Which messages carry which files: who may read a file follows from it.
CREATE TABLE message_files (
    file_id TEXT NOT NULL,
    room    TEXT NOT NULL,
    msg_id  INTEGER NOT NULL,
    name    TEXT NOT NULL,
    author  TEXT NOT NULL,
    PRIMARY KEY (file_id, room, msg_id)
);
CREATE INDEX message_files_message ON message_files (room, msg_id);
CREATE INDEX message_files_author ON message_files (author);

-- A message's files as it shows them: a JSON array of file objects.
ALTER TABLE messages ADD COLUMN attachments TEXT;
