package sqlstore

import "context"

// MigrateTo is Migrate stopped after schema version v, so that tests can
// start from an older schema.
func (s *Store) MigrateTo(ctx context.Context, v int64) error { return s.migrate(ctx, v) }

// LatestVersion is the latest schema version this code knows.
func (s *Store) LatestVersion() int64 { return s.latestVersion() }
