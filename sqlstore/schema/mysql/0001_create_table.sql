-- apikeys sqlstore schema, version 1 (MySQL 8, MariaDB).
-- id is the canonical lower-case UUID text, so its order is creation order;
-- user_id is VARBINARY so tenants compare byte for byte (no case folding,
-- no trailing-space padding); times are UTC in DATETIME(6).
CREATE TABLE IF NOT EXISTS {{.Table}} (
    id                  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id             VARBINARY(255) NOT NULL,
    key_type            VARCHAR(16)    NOT NULL,
    name                VARCHAR(255)   NOT NULL,
    allowed_origins     JSON           NOT NULL,
    allowed_assistants  JSON           NOT NULL,
    transient_assistant BOOLEAN        NOT NULL DEFAULT FALSE,
    user_email          VARCHAR(255)   NOT NULL DEFAULT '',
    hint                VARCHAR(255)   NOT NULL DEFAULT '',
    digest              BINARY(32)     NOT NULL,
    created_at          DATETIME(6)    NOT NULL,
    updated_at          DATETIME(6)    NOT NULL,
    expires_at          DATETIME(6)    NULL,
    last_used_at        DATETIME(6)    NULL,
    version             BIGINT         NOT NULL,
    PRIMARY KEY (id),
    KEY {{.UserIndex}} (user_id, id),
    CHECK (key_type IN ('private', 'public'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
