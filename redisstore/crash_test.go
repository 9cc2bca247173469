package redisstore

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// crashAt returns a Store.hook that stops the operation at step, as if the
// process died there: nothing after it is sent.
func crashAt(step string) func(context.Context, string) error {
	return func(_ context.Context, s string) error {
		if s == step {
			return errCrash
		}
		return nil
	}
}

// assertEveryRecordListed checks the invariant the write order keeps: every
// record in the namespace (so every key that can authorize) is listed by
// its owner, and so can be found and deleted.
func assertEveryRecordListed(t *testing.T, s *Store, rdb redis.UniversalClient) {
	t.Helper()
	ctx := t.Context()
	for _, key := range scanNamespace(ctx, t, rdb, s.ns+"k:") {
		id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(key, s.ns+"k:{"), "}"))
		require.NoError(t, err, key)
		owner, err := rdb.HGet(ctx, key, fUserID).Result()
		require.NoError(t, err, key)
		assert.Contains(t, listIDs(t, s, owner, 1000), id, "record %s exists but its owner %q does not list it", id, owner)
	}
}

func TestCrashInCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			step       string
			wantRecord bool
		}{
			{stepCreateIndexed, false},
			{stepCreateStored, true},
		}
		for _, tt := range tests {
			t.Run(tt.step, func(t *testing.T) {
				s, rdb, _ := newStore(t, b, repairAtOnce)
				m, err := apikeys.New(s, nil)
				require.NoError(t, err)
				ctx := t.Context()

				s.hook = crashAt(tt.step)
				_, err = m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "crash", UserID: "alice"})
				require.ErrorIs(t, err, errCrash)
				s.hook = nil

				// Whatever the crash left, every record that exists is listed.
				index := indexMembers(t, s, rdb, "alice")
				require.Len(t, index, 1, "the index entry is written first")
				id := uuid.MustParse(index[0])
				_, err = s.Get(ctx, id)
				if tt.wantRecord {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, apikeys.ErrNotFound)
				}
				assertEveryRecordListed(t, s, rdb)

				page, err := m.List(ctx, "alice", apikeys.ListParams{})
				require.NoError(t, err)
				if tt.wantRecord {
					require.Len(t, page.Keys, 1)
					assert.Equal(t, id, page.Keys[0].ID)
					_, err = m.Delete(ctx, "alice", id)
					require.NoError(t, err, "the record can be deleted")
				} else {
					assert.Empty(t, page.Keys)
				}
				assert.Empty(t, indexMembers(t, s, rdb, "alice"), "no entry is left behind")
			})
		}
	})
}

func TestCrashInDelete(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, repairAtOnce)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		ctx := t.Context()
		nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "crash", UserID: "alice"})
		require.NoError(t, err)
		_, err = m.Authorize(ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err)

		s.hook = crashAt(stepDeleteRemoved)
		_, err = m.Delete(ctx, "alice", nk.ID)
		require.ErrorIs(t, err, errCrash)
		s.hook = nil

		// The record went first: the key no longer authorizes, and only
		// a stale index entry is left.
		_, err = m.Authorize(ctx, nk.Value, apikeys.Request{})
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
		assert.Equal(t, []string{nk.ID.String()}, indexMembers(t, s, rdb, "alice"))
		assertEveryRecordListed(t, s, rdb)

		page, err := m.List(ctx, "alice", apikeys.ListParams{})
		require.NoError(t, err)
		assert.Empty(t, page.Keys)
		assert.Empty(t, indexMembers(t, s, rdb, "alice"), "the listing removed the stale entry")
		_, err = m.Delete(ctx, "alice", nk.ID)
		require.ErrorIs(t, err, apikeys.ErrNotFound)
	})
}

// TestListDuringCreate: a listing between the two writes of a Create sees
// an entry without a record and removes it; the Create, writing the entry
// again after the record, still ends listed.
func TestListDuringCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, repairAtOnce)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		ctx := t.Context()
		listed := false
		s.hook = func(ctx context.Context, step string) error {
			if step != stepCreateIndexed {
				return nil
			}
			listed = true
			recs, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 10})
			require.NoError(t, err)
			assert.Empty(t, recs)
			assert.Empty(t, indexMembers(t, s, rdb, "alice"), "the listing removed the entry of the record not yet written")
			return nil
		}
		nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "race", UserID: "alice"})
		require.NoError(t, err)
		require.True(t, listed)
		s.hook = nil

		_, err = m.Authorize(ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err)
		assert.Equal(t, []uuid.UUID{nk.ID}, listIDs(t, s, "alice", 10))
		assertEveryRecordListed(t, s, rdb)
	})
}

// TestCreateDuringListRepair: a Create that writes its record and its
// second entry after a listing found the record missing but before the
// listing removes the entry; the listing, checking again after removing,
// puts the entry back.
func TestCreateDuringListRepair(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, repairAtOnce)
		ctx := t.Context()
		rec := testRecord(t, "alice")
		// The first write of a Create, by hand.
		require.NoError(t, rdb.ZAdd(ctx, s.indexKey("alice"), redis.Z{Member: rec.ID.String()}).Err())

		created := false
		s.hook = func(ctx context.Context, step string) error {
			if step != stepListRepair || created {
				return nil
			}
			created = true
			require.NoError(t, s.Create(ctx, rec))
			return nil
		}
		recs, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 10})
		require.NoError(t, err)
		require.True(t, created)
		assert.Empty(t, recs, "the record did not exist when the listing read it")
		s.hook = nil

		assert.Equal(t, []string{rec.ID.String()}, indexMembers(t, s, rdb, "alice"), "the entry was put back")
		assert.Equal(t, []uuid.UUID{rec.ID}, listIDs(t, s, "alice", 10))
		assertEveryRecordListed(t, s, rdb)
	})
}

// repairAtOnce makes listings remove stale entries however young, to test
// the repair itself; by default young entries are left alone (see
// TestYoungEntriesLeftAlone).
var repairAtOnce = &Config{RepairAfter: -1}

// TestYoungEntriesLeftAlone: with the default RepairAfter, a listing that
// runs between a Create's two writes neither lists the key nor removes its
// entry, so no other listing can miss the key once the Create returns (the
// soak test caught that window). A crash-left entry is removed once old.
func TestYoungEntriesLeftAlone(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		ctx := t.Context()
		s.hook = func(ctx context.Context, step string) error {
			if step != stepCreateIndexed {
				return nil
			}
			recs, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 10})
			require.NoError(t, err)
			assert.Empty(t, recs, "the record is not written yet")
			assert.Len(t, indexMembers(t, s, rdb, "alice"), 1, "the young entry stays")
			return nil
		}
		nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "race", UserID: "alice"})
		require.NoError(t, err)
		s.hook = nil
		assert.Equal(t, []uuid.UUID{nk.ID}, listIDs(t, s, "alice", 10))

		// An entry without a record: kept while young, removed once old.
		young := uuid.Must(uuid.NewV7())
		old := young
		old[0], old[1] = 0, 1 // a timestamp in 1970
		for _, id := range []uuid.UUID{young, old} {
			require.NoError(t, rdb.ZAdd(ctx, s.indexKey("alice"), redis.Z{Member: id.String()}).Err())
		}
		assert.Equal(t, []uuid.UUID{nk.ID}, listIDs(t, s, "alice", 10), "neither is listed")
		assert.ElementsMatch(t, []string{nk.ID.String(), young.String()}, indexMembers(t, s, rdb, "alice"), "only the old one is removed")
	})
}
