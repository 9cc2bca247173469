-- apikeys sqlstore schema, version 2 (PostgreSQL).
-- successor_id is the key Rotate issued to replace this one
-- (apikeys.Key.SuccessorID), stored like id; NULL when there is none.
-- Adding a nullable column without a default keeps every row and rewrites
-- none of them.
ALTER TABLE {{.Table}} ADD COLUMN IF NOT EXISTS successor_id UUID;
