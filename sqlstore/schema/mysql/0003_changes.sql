-- apikeys sqlstore schema, version 3 (MySQL 8, MariaDB).
-- The change log: one row per "the key with this id changed or was
-- deleted", written by Store.Publish and read by every instance's
-- Store.Subscribe, which polls for rows with a seq above the last it saw.
-- Rows are pruned some minutes after created_at (the database's UTC clock),
-- by whichever instance gets there. CREATE ... IF NOT EXISTS runs again
-- safely if a migration stopped before recording this version.
CREATE TABLE IF NOT EXISTS `{{.TableName}}_changes` (
    seq        BIGINT      NOT NULL AUTO_INCREMENT,
    key_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
