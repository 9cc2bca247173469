package sqlstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// TestLastUsedMicroseconds: TouchLastUsed and Update keep the later
// last_used_at to the microsecond, at the ends of what the columns hold.
func TestLastUsedMicroseconds(t *testing.T) {
	t.Parallel()
	µs := time.Microsecond
	tests := []struct {
		name    string
		stored  time.Time
		touch   time.Time // zero: none
		written time.Time // by an Update after the touch
		want    time.Time
	}{
		{"touch 1µs later", at, at.Add(µs), at, at.Add(µs)},
		{"touch 1µs earlier", at, at.Add(-µs), at.Add(-µs), at},
		{"update 1µs later", at, time.Time{}, at.Add(µs), at.Add(µs)},
		{"update 1µs earlier", at, time.Time{}, at.Add(-µs), at},
		{"update zero", at, time.Time{}, time.Time{}, at},
		{"first use by update", time.Time{}, time.Time{}, at, at},
		{"never used", time.Time{}, time.Time{}, time.Time{}, time.Time{}},
		{"year 1000", time.Date(1000, 1, 1, 0, 0, 0, 1000, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 2000, time.UTC),
			time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 2000, time.UTC)},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999997000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999998000, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999997000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999998000, time.UTC)},
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		for _, tt := range tests {
			rec := testRecord(t, "micro-user")
			rec.LastUsedAt = tt.stored
			require.NoError(t, s.Create(ctx(t), rec), tt.name)
			if !tt.touch.IsZero() {
				require.NoError(t, s.TouchLastUsed(ctx(t), []apikeys.Use{{ID: rec.ID, At: tt.touch}}), tt.name)
			}
			up := rec
			up.LastUsedAt = tt.written
			up.Version++
			require.NoError(t, s.Update(ctx(t), up), tt.name)
			got, err := s.Get(ctx(t), rec.ID)
			require.NoError(t, err, tt.name)
			assert.Truef(t, got.LastUsedAt.Equal(tt.want), "%s: LastUsedAt = %v, want %v", tt.name, got.LastUsedAt, tt.want)
		}
	})
}

// TestTouchLastUsedLargeBatch: a batch larger than one statement holds,
// with an id several times (the latest use counts) and ids without a
// record, is written whole.
func TestTouchLastUsedLargeBatch(t *testing.T) {
	t.Parallel()
	const keys = 1100
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		recs := make([]apikeys.Record, keys)
		var uses []apikeys.Use
		for i := range recs {
			recs[i] = testRecord(t, "batch-user")
			recs[i].LastUsedAt = time.Time{}
			require.NoError(t, s.Create(ctx(t), recs[i]))
			uses = append(uses, apikeys.Use{ID: recs[i].ID, At: at.Add(time.Duration(i) * time.Microsecond)})
			if i%100 == 0 {
				uses = append(uses,
					apikeys.Use{ID: recs[i].ID, At: at.Add(-time.Hour)},
					apikeys.Use{ID: apikeysID(t), At: at})
			}
		}
		require.NoError(t, s.TouchLastUsed(ctx(t), uses))
		for i, rec := range recs {
			got, err := s.Get(ctx(t), rec.ID)
			require.NoError(t, err)
			want := at.Add(time.Duration(i) * time.Microsecond)
			require.Truef(t, got.LastUsedAt.Equal(want), "key %d: LastUsedAt = %v, want %v", i, got.LastUsedAt, want)
			require.Equal(t, rec.Version, got.Version, "TouchLastUsed changed the version")
		}
	})
}
