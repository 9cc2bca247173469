-- apikeys sqlstore schema, version 4 (SQLite).
-- The restrictions of issue 12: scopes ("resource:action" entries) and
-- allowed_ips (canonical prefixes, "203.0.113.0/24") are JSON text arrays
-- of strings like allowed_origins; disabled is apikeys.Key.Disabled, 0 or
-- 1. The defaults keep every row and give it what a key without the
-- fields is: no scopes, no addresses, enabled (and a Store of version 3,
-- which names only its own columns, keeps inserting rows).
ALTER TABLE {{.Table}} ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE {{.Table}} ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '[]';
ALTER TABLE {{.Table}} ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
