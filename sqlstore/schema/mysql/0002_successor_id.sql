-- apikeys sqlstore schema, version 2 (MySQL 8, MariaDB).
-- successor_id is the key Rotate issued to replace this one
-- (apikeys.Key.SuccessorID), stored like id: the canonical lower-case UUID
-- text in ascii_bin; NULL when there is none. Adding a nullable column
-- keeps every row.
-- MySQL commits DDL at once, so a migration can stop after the ALTER and
-- before its version is recorded; MySQL 8 has no ADD COLUMN IF NOT EXISTS,
-- so the column is added only when information_schema does not list it,
-- and running this again does nothing.
SET @apikeys_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = '{{.TableName}}' AND column_name = 'successor_id') = 0,
    'ALTER TABLE {{.Table}} ADD COLUMN successor_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL',
    'DO 0');
PREPARE apikeys_add_successor_id FROM @apikeys_ddl;
EXECUTE apikeys_add_successor_id;
DEALLOCATE PREPARE apikeys_add_successor_id;
