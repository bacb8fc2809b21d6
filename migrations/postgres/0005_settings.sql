-- Server settings kept with the data, so that every node and restart agree:
-- the secret that visitors' form (CSRF) tokens are made with.
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
