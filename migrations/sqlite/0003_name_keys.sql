-- Guest names remember the name as last typed: direct-message rooms use it,
-- and a name with direct messages never passes to another browser.
ALTER TABLE guest_names ADD COLUMN name TEXT;
-- Counting the names one browser holds.
CREATE INDEX guest_names_holder ON guest_names (holder, last_seen_ms);

-- The version of the name key (src/names.rs) the stored keys were made
-- with; the server rewrites older ones at start-up (0: lower case).
CREATE TABLE name_keys (version INTEGER NOT NULL);
INSERT INTO name_keys (version) VALUES (0);
