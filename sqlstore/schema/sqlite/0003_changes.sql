-- apikeys sqlstore schema, version 3 (SQLite).
-- The change log: one row per "the key with this id changed or was
-- deleted", written by Store.Publish and read by Store.Subscribe of every
-- process that opens the file, which polls for rows with a seq above the
-- last it saw. AUTOINCREMENT: a seq is never reused, even after the rows
-- above it were deleted. created_at is Unix microseconds; rows are pruned
-- some minutes after it.
CREATE TABLE IF NOT EXISTS "{{.TableName}}_changes" (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    key_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
