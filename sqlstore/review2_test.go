package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
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

// TestReview2OldListColumnNullFailsOpen: the restriction columns of
// version 4 refuse NULL and JSON null ("a restriction that cannot be read
// must not read as none"), but allowed_origins and allowed_assistants go
// through listScanner, which reads SQL NULL and the JSON null (valid in a
// NOT NULL JSON/JSONB column) as an empty list: no restriction. A public
// key limited to one origin, whose column holds null, then works from any
// web page; one limited to assistants, with any assistant.
func TestReview2OldListColumnNullFailsOpen(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		null := map[sqlstore.Dialect]string{
			sqlstore.Postgres: "'null'::jsonb", sqlstore.MySQL: "'null'", sqlstore.SQLite: "'null'",
		}[db.dialect]
		for _, column := range []string{"allowed_origins", "allowed_assistants"} {
			nk, err := m.Create(ctx(t), apikeys.CreateParams{
				Type: apikeys.Public, Name: "web", UserID: "mallory",
				AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst-1"},
			})
			require.NoError(t, err)
			_, err = db.ExecContext(ctx(t), "UPDATE "+quote(db.dialect, s.Table())+" SET "+column+" = "+null+
				" WHERE id = "+ph(db.dialect, 1), nk.ID.String())
			require.NoError(t, err)
			rec, err := s.Get(ctx(t), nk.ID)
			assert.Error(t, err, "%s = JSON null read as origins %q, assistants %q", column, rec.AllowedOrigins, rec.AllowedAssistants)
			_, err = m.Authorize(ctx(t), nk.Value, apikeys.Request{Origin: "https://evil.example.net", AssistantID: "asst-evil"})
			var se *apikeys.StoreError
			assert.True(t, errors.As(err, &se), "%s = JSON null: Authorize from another origin with another assistant = %v, want a *apikeys.StoreError", column, err)
		}
	})
}

// TestReview2ChangeLogWideGapSilent: a seq given up by the gap tracking
// (more than maxMissing = 256 below a row read, or still missing after
// 30s) is dropped without a reset. A change that commits that late (more
// than 256 Publish inserts in flight at once during a mass revocation, a
// commit stalled >30s on fsync or semi-sync replication) is then neither
// delivered nor followed by a reset. Giving up a seq could call onReset.
func TestReview2ChangeLogWideGapSilent(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		sp := storeOn(t, db.DB, s.Table(), sqlstore.Config{PollInterval: 10 * time.Millisecond})
		p := subscribe(t, sp)
		p.waitListening(t, s)
		cl := changeLogOf(db, s)
		_, _, hi := cl.count(t)
		late, early := apikeysID(t), apikeysID(t)
		r := p.resetCount()
		cl.insertAt(t, hi+300, early)
		p.waitFor(t, "the row above the gap", func() bool { return p.saw(early) })
		cl.insertAt(t, hi+1, late)
		// A fresh change, read in the same or a later poll than the late row
		// would be if it were still looked for.
		fresh := apikeysID(t)
		require.NoError(t, s.Publish(ctx(t), fresh))
		p.waitFor(t, "a later change", func() bool { return p.saw(fresh) || p.resetCount() > r })
		require.True(t, p.saw(late) || p.resetCount() > r, "a change committed 299 seqs late was neither delivered nor followed by a reset")
	})
}
