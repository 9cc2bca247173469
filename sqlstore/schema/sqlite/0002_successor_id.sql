-- apikeys sqlstore schema, version 2 (SQLite).
-- successor_id is the key Rotate issued to replace this one
-- (apikeys.Key.SuccessorID), stored like id: the canonical lower-case UUID
-- text; NULL when there is none. Adding a nullable column keeps every row.
ALTER TABLE {{.Table}} ADD COLUMN successor_id TEXT;
