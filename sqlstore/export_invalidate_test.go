package sqlstore

import (
	"context"
	"time"
)

// PruneChanges runs one pruning round of the change log, as Subscribe does
// every minute.
func (s *Store) PruneChanges(ctx context.Context) error { return s.pruneChanges(ctx, nil) }

// Change-log constants for the tests.
const (
	ChangeRetention = changeRetention
	PruneBatch      = pruneBatch
)

// SetPruneEvery sets how often Subscribe prunes the change log; call it
// before Subscribe.
func (s *Store) SetPruneEvery(d time.Duration) { s.inv.pruneEvery = d }
