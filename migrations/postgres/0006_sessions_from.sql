-- Sessions signed in before this time no longer count (a password change).
ALTER TABLE accounts ADD COLUMN sessions_from_ms BIGINT NOT NULL DEFAULT 0;
