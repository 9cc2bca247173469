-- apikeys sqlstore schema, version 4 (MySQL 8.0.13 or later, MariaDB).
-- The restrictions of issue 12: scopes ("resource:action" entries) and
-- allowed_ips (canonical prefixes, "203.0.113.0/24") are JSON arrays of
-- strings like allowed_origins; disabled is apikeys.Key.Disabled. The
-- defaults keep every row and give it what a key without the fields is:
-- no scopes, no addresses, enabled (and a Store of version 3, which names
-- only its own columns, keeps inserting rows). MySQL takes no literal
-- default for JSON, only an expression in parentheses (8.0.13 and later);
-- MariaDB takes both.
-- As in version 2, each column is added only when information_schema does
-- not list it, so that running this again after a migration stopped
-- between two ALTERs (MySQL commits DDL at once) does nothing more.
SET @apikeys_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = '{{.TableName}}' AND column_name = 'scopes') = 0,
    'ALTER TABLE {{.Table}} ADD COLUMN scopes JSON NOT NULL DEFAULT (''[]'')',
    'DO 0');
PREPARE apikeys_add_scopes FROM @apikeys_ddl;
EXECUTE apikeys_add_scopes;
DEALLOCATE PREPARE apikeys_add_scopes;
SET @apikeys_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = '{{.TableName}}' AND column_name = 'allowed_ips') = 0,
    'ALTER TABLE {{.Table}} ADD COLUMN allowed_ips JSON NOT NULL DEFAULT (''[]'')',
    'DO 0');
PREPARE apikeys_add_allowed_ips FROM @apikeys_ddl;
EXECUTE apikeys_add_allowed_ips;
DEALLOCATE PREPARE apikeys_add_allowed_ips;
SET @apikeys_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = '{{.TableName}}' AND column_name = 'disabled') = 0,
    'ALTER TABLE {{.Table}} ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE',
    'DO 0');
PREPARE apikeys_add_disabled FROM @apikeys_ddl;
EXECUTE apikeys_add_disabled;
DEALLOCATE PREPARE apikeys_add_disabled;
