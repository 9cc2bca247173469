-- apikeys sqlstore schema, version 1 (SQLite).
-- Lists are JSON text; times are INTEGER microseconds since the Unix epoch
-- (UTC); id is the canonical lower-case UUID text.
CREATE TABLE IF NOT EXISTS {{.Table}} (
    id                  TEXT    NOT NULL PRIMARY KEY,
    user_id             TEXT    NOT NULL,
    key_type            TEXT    NOT NULL CHECK (key_type IN ('private', 'public')),
    name                TEXT    NOT NULL,
    allowed_origins     TEXT    NOT NULL DEFAULT '[]',
    allowed_assistants  TEXT    NOT NULL DEFAULT '[]',
    transient_assistant INTEGER NOT NULL DEFAULT 0,
    user_email          TEXT    NOT NULL DEFAULT '',
    hint                TEXT    NOT NULL DEFAULT '',
    digest              BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    expires_at          INTEGER,
    last_used_at        INTEGER,
    version             INTEGER NOT NULL
);
-- A user's keys newest first: WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?.
CREATE INDEX IF NOT EXISTS {{.UserIndex}} ON {{.Table}} (user_id, id);
