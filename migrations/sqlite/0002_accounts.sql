-- Registered accounts; names are unique regardless of case.
CREATE TABLE accounts (
    name          TEXT PRIMARY KEY NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL
);

-- API tokens, stored as SHA-256 of the token; shown once at creation.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL REFERENCES accounts (name),
    label       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE INDEX api_tokens_owner ON api_tokens (owner);

-- Guest names stay with the browser that used them, for a while after.
CREATE TABLE guest_names (
    name_key     TEXT PRIMARY KEY NOT NULL,
    holder       TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
