-- apikeys sqlstore schema, version 4 (PostgreSQL).
-- The restrictions of issue 12: scopes ("resource:action" entries) and
-- allowed_ips (canonical prefixes, "203.0.113.0/24") are JSONB arrays of
-- strings like allowed_origins; disabled is apikeys.Key.Disabled. The
-- defaults keep every row and give it what a key without the fields is:
-- no scopes, no addresses, enabled (and a Store of version 3, which names
-- only its own columns, keeps inserting rows). Constant defaults rewrite
-- no row (PostgreSQL 11 and later).
ALTER TABLE {{.Table}}
    ADD COLUMN IF NOT EXISTS scopes      JSONB   NOT NULL DEFAULT '[]',
    ADD COLUMN IF NOT EXISTS allowed_ips JSONB   NOT NULL DEFAULT '[]',
    ADD COLUMN IF NOT EXISTS disabled    BOOLEAN NOT NULL DEFAULT FALSE;
