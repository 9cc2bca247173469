-- apikeys sqlstore schema, version 1 (PostgreSQL).
-- Lists are JSONB arrays of strings; digest is SHA-256 or HMAC-SHA-256 of
-- the key, never the key itself; times are instants (TIMESTAMPTZ).
CREATE TABLE IF NOT EXISTS {{.Table}} (
    id                  UUID        NOT NULL PRIMARY KEY,
    user_id             TEXT        NOT NULL,
    key_type            TEXT        NOT NULL CHECK (key_type IN ('private', 'public')),
    name                TEXT        NOT NULL,
    allowed_origins     JSONB       NOT NULL DEFAULT '[]',
    allowed_assistants  JSONB       NOT NULL DEFAULT '[]',
    transient_assistant BOOLEAN     NOT NULL DEFAULT FALSE,
    user_email          TEXT        NOT NULL DEFAULT '',
    hint                TEXT        NOT NULL DEFAULT '',
    digest              BYTEA       NOT NULL CHECK (octet_length(digest) = 32),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ,
    last_used_at        TIMESTAMPTZ,
    version             BIGINT      NOT NULL
);
-- A user's keys newest first: WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3.
CREATE INDEX IF NOT EXISTS {{.UserIndex}} ON {{.Table}} (user_id, id);
