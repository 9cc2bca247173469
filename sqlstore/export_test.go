package sqlstore

import "context"

// MigrateTo is Migrate stopped after schema version v, so that tests can
// start from an older schema.
func (s *Store) MigrateTo(ctx context.Context, v int64) error { return s.migrate(ctx, v) }
