-- Web Push subscriptions, one per browser profile (PROTOCOL.md, "Reading,
-- notifications"): where to send, the keys to encrypt for, and whether the
-- person wants a private room's text shown on that device's lock screen.
CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    previews   INTEGER NOT NULL DEFAULT 0,
    label      TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_account ON push_subscriptions (account);
