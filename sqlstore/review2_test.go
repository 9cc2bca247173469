package sqlstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys/sqlstore"
)

// TestReview2ChangeLogRefilledPastHigh: the package doc promises that a
// change log "that ends below what it has read (an emptied, recreated
// table)" is noticed. It is noticed only by the prune round (once a
// minute by default), and only if the log is still below the
// subscriber's high mark then. A log emptied with its sequence restarted
// (TRUNCATE on MySQL, an emptied sqlite_sequence on SQLite) and then
// refilled past the old high mark before that round makes the subscriber
// skip every row up to the old high mark for good: those changes are
// published, never delivered, and no reset follows, so other instances
// keep serving the revoked keys from their caches for the whole TTL.
func TestReview2ChangeLogRefilledPastHigh(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		for range 3 {
			require.NoError(t, s.Publish(ctx(t), apikeysID(t)))
		}
		// Default prune interval (a minute): the first round runs at the
		// first read, the next one long after this test.
		sp := storeOn(t, db.DB, s.Table(), sqlstore.Config{PollInterval: 10 * time.Millisecond})
		p := subscribe(t, sp)
		p.waitListening(t, s)
		cl := changeLogOf(db, s)
		_, _, hi := cl.count(t)
		r := p.resetCount()
		if db.dialect == sqlstore.MySQL {
			_, err := db.ExecContext(ctx(t), "TRUNCATE TABLE "+cl.table)
			require.NoError(t, err)
		} else {
			_, err := db.ExecContext(ctx(t), "DELETE FROM "+cl.table)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx(t), "DELETE FROM sqlite_sequence WHERE name = ?", s.Table()+"_changes")
			require.NoError(t, err)
		}
		// Revocations published after the rewind: seqs 1..hi, then one more.
		revoked := make([]uuid.UUID, hi)
		for i := range revoked {
			revoked[i] = apikeysID(t)
			require.NoError(t, s.Publish(ctx(t), revoked[i]))
		}
		last := apikeysID(t)
		require.NoError(t, s.Publish(ctx(t), last))
		p.waitFor(t, "the change above the old high mark, or a reset",
			func() bool { return p.saw(last) || p.resetCount() > r })
		if p.resetCount() > r {
			return // noticed
		}
		// Rows are read in seq order, so the earlier ones had their chance.
		var missed int
		for _, id := range revoked {
			if !p.saw(id) {
				missed++
			}
		}
		require.Zero(t, missed, "of %d revocations published after the log was rewound, %d were neither delivered nor followed by a reset", len(revoked), missed)
	})
}
