package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		storetest.RunConfig(t, func(t *testing.T) apikeys.Store {
			s, _, _ := newStore(t, b, nil)
			return s
		}, storetest.Config{
			// Another instance: its own client on the same server and
			// namespace.
			Reopen: func(t *testing.T, s apikeys.Store) apikeys.Store {
				first := s.(*Store)
				other, err := New(secondClient(t, first.rdb), &Config{Namespace: first.ns})
				require.NoError(t, err)
				return other
			},
		})
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	tests := []struct {
		name     string
		rdb      redis.UniversalClient
		cfg      *Config
		wantErr  bool
		wantNS   string
		wantMarg time.Duration
	}{
		{name: "nil config", rdb: rdb, cfg: nil, wantNS: "apikeys:", wantMarg: 24 * time.Hour},
		{name: "zero config", rdb: rdb, cfg: &Config{}, wantNS: "apikeys:", wantMarg: 24 * time.Hour},
		{name: "custom", rdb: rdb, cfg: &Config{Namespace: "app1:keys:", ExpiryMargin: time.Hour}, wantNS: "app1:keys:", wantMarg: time.Hour},
		{name: "no redis expiry", rdb: rdb, cfg: &Config{ExpiryMargin: -1}, wantNS: "apikeys:", wantMarg: -1},
		{name: "nil client", rdb: nil, wantErr: true},
		{name: "open brace in namespace", rdb: rdb, cfg: &Config{Namespace: "app{1}:"}, wantErr: true},
		{name: "close brace in namespace", rdb: rdb, cfg: &Config{Namespace: "app}:"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tt.rdb, tt.cfg)
			if tt.wantErr {
				require.Error(t, err)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantNS, s.ns)
			assert.Equal(t, tt.wantMarg, s.margin)
		})
	}
}

// TestKeyLayout checks the key names the package doc promises.
func TestKeyLayout(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, nil)
	require.NoError(t, err)
	rec := testRecord(t, "we{ir}d/user✓")
	require.NoError(t, s.Create(t.Context(), rec))

	recordKey := "apikeys:k:{" + rec.ID.String() + "}"
	indexKey := "apikeys:u:{" + base64.RawURLEncoding.EncodeToString([]byte(rec.UserID)) + "}"
	assert.ElementsMatch(t, []string{recordKey, indexKey}, mr.Keys())
	assert.Equal(t, "hash", mr.Type(recordKey))
	members, err := mr.ZMembers(indexKey)
	require.NoError(t, err)
	assert.Equal(t, []string{rec.ID.String()}, members)

	// Nothing but the record's fields, and the digest as its raw bytes.
	fields, err := mr.HKeys(recordKey)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"type", "name", "user_id", "user_email", "hint", "origins", "assistants", "transient",
		"created_at", "updated_at", "expires_at", "last_used_at", "digest", "version", "successor_id",
		"scopes", "allowed_ips", "disabled",
	}, fields)
	assert.Equal(t, string(rec.Digest[:]), mr.HGet(recordKey, "digest"))
	assert.Equal(t, `["https://app.example.com","https://*.example.org:8443"]`, mr.HGet(recordKey, "origins"))
	assert.Equal(t, "1", mr.HGet(recordKey, "version"))
	assert.Equal(t, rec.SuccessorID.String(), mr.HGet(recordKey, "successor_id"))
	assert.Equal(t, `["calls:read"]`, mr.HGet(recordKey, "scopes"))
	assert.Equal(t, `["203.0.113.0/24"]`, mr.HGet(recordKey, "allowed_ips"))
	assert.Equal(t, "1", mr.HGet(recordKey, "disabled"))

	// The zero SuccessorID is an empty field, written like the others so
	// that an Update clears it.
	rec.SuccessorID, rec.Version = uuid.UUID{}, 2
	require.NoError(t, s.Update(t.Context(), rec))
	assert.True(t, mr.Exists(recordKey))
	assert.Empty(t, mr.HGet(recordKey, "successor_id"))
	fields, err = mr.HKeys(recordKey)
	require.NoError(t, err)
	assert.Contains(t, fields, "successor_id")
}

// testRecord returns a record of user with every field set.
func testRecord(t testing.TB, user string) apikeys.Record {
	t.Helper()
	var d apikeys.Digest
	_, err := rand.Read(d[:])
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Microsecond)
	return apikeys.Record{
		Key: apikeys.Key{
			ID:                 uuid.Must(uuid.NewV7()),
			Type:               apikeys.Public,
			Name:               "widget",
			AllowedOrigins:     []string{"https://app.example.com", "https://*.example.org:8443"},
			AllowedAssistants:  []string{"asst_1"},
			TransientAssistant: true,
			Scopes:             []string{"calls:read"},
			AllowedIPs:         []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
			Disabled:           true,
			UserID:             user,
			UserEmail:          "someone@example.com",
			Hint:               "ak_pk_...x9Yz",
			CreatedAt:          now,
			UpdatedAt:          now,
			ExpiresAt:          now.Add(time.Hour),
			SuccessorID:        uuid.Must(uuid.NewV7()),
		},
		Digest:  d,
		Version: 1,
	}
}

func listIDs(t *testing.T, s *Store, user string, limit int) []uuid.UUID {
	t.Helper()
	recs, err := s.List(t.Context(), user, apikeys.ListQuery{Limit: limit})
	require.NoError(t, err)
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// indexMembers reads the user's index as it is in Redis.
func indexMembers(t *testing.T, s *Store, rdb redis.UniversalClient, user string) []string {
	t.Helper()
	m, err := rdb.ZRange(t.Context(), s.indexKey(user), 0, -1).Result()
	require.NoError(t, err)
	return m
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, rdb, _ := newStore(t, b, nil)
		pttl := func(id uuid.UUID) time.Duration {
			t.Helper()
			d, err := rdb.PTTL(ctx, s.recordKey(id.String())).Result()
			require.NoError(t, err)
			return d
		}
		const slack = time.Minute

		future := testRecord(t, "alice")
		future.ExpiresAt = time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		require.NoError(t, s.Create(ctx, future))
		assert.InDelta(t, float64(time.Hour+DefaultExpiryMargin), float64(pttl(future.ID)), float64(slack), "expiry in an hour")

		// An expired but present record is returned as it is (the Manager
		// refuses it), and Redis keeps it for the margin from now.
		past := testRecord(t, "alice")
		past.ExpiresAt = time.Now().Add(-10 * 24 * time.Hour).UTC().Truncate(time.Microsecond)
		require.NoError(t, s.Create(ctx, past))
		got, err := s.Get(ctx, past.ID)
		require.NoError(t, err)
		assert.True(t, got.ExpiresAt.Equal(past.ExpiresAt))
		assert.InDelta(t, float64(DefaultExpiryMargin), float64(pttl(past.ID)), float64(slack), "expired ten days ago")

		never := testRecord(t, "alice")
		never.ExpiresAt = time.Time{}
		require.NoError(t, s.Create(ctx, never))
		assert.Equal(t, time.Duration(-1), pttl(never.ID), "no expiry: no TTL")

		// Update moves or removes the Redis expiry with expires_at.
		future.Version, future.ExpiresAt = 2, time.Time{}
		require.NoError(t, s.Update(ctx, future))
		assert.Equal(t, time.Duration(-1), pttl(future.ID), "expiry removed by Update")
		never.Version, never.ExpiresAt = 2, time.Now().Add(48*time.Hour).UTC().Truncate(time.Microsecond)
		require.NoError(t, s.Update(ctx, never))
		assert.InDelta(t, float64(48*time.Hour+DefaultExpiryMargin), float64(pttl(never.ID)), float64(slack), "expiry set by Update")
	})
}

func TestExpiryMarginDisabled(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t, backends[0], &Config{ExpiryMargin: -1})
	rec := testRecord(t, "alice")
	require.NoError(t, s.Create(t.Context(), rec))
	d, err := rdb.PTTL(t.Context(), s.recordKey(rec.ID.String())).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), d)
}

// TestExpiredRecordDroppedByRedis lets miniredis' clock pass the Redis
// expiry and shows the listing stays consistent and repairs the index.
func TestExpiredRecordDroppedByRedis(t *testing.T) {
	t.Parallel()
	s, rdb, mr := newStore(t, backends[0], &Config{ExpiryMargin: time.Hour, RepairAfter: -1})
	ctx := t.Context()
	dies, lives := testRecord(t, "alice"), testRecord(t, "alice")
	lives.ExpiresAt = time.Time{}
	require.NoError(t, s.Create(ctx, dies))
	require.NoError(t, s.Create(ctx, lives))

	mr.FastForward(2*time.Hour + time.Minute)
	_, err := s.Get(ctx, dies.ID)
	require.ErrorIs(t, err, apikeys.ErrNotFound)
	assert.Len(t, indexMembers(t, s, rdb, "alice"), 2, "the index still names the dropped record")
	assert.Equal(t, []uuid.UUID{lives.ID}, listIDs(t, s, "alice", 10))
	assert.Equal(t, []string{lives.ID.String()}, indexMembers(t, s, rdb, "alice"), "List removes the stale entry")
}

// TestListFillsPageOverStaleEntries: stale entries inside a page do not
// shorten it, since a short page tells the caller the listing has ended.
func TestListFillsPageOverStaleEntries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, repairAtOnce)
		ctx := t.Context()
		var live []uuid.UUID
		for i := range 12 {
			rec := testRecord(t, "alice")
			require.NoError(t, s.Create(ctx, rec))
			if i%3 == 1 {
				live = append(live, rec.ID)
				continue
			}
			// As if Redis had dropped it, or a Delete had crashed midway.
			require.NoError(t, rdb.Del(ctx, s.recordKey(rec.ID.String())).Err())
		}
		slices.Reverse(live)
		recs, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 3})
		require.NoError(t, err)
		got := make([]uuid.UUID, len(recs))
		for i, r := range recs {
			got[i] = r.ID
		}
		assert.Equal(t, live[:3], got, "a full page of live records")
		assert.Equal(t, live, listIDs(t, s, "alice", 100))
		assert.Len(t, indexMembers(t, s, rdb, "alice"), len(live), "stale entries removed")
	})
}

// TestCreateDuplicateOfOtherUser: a duplicate id sent for another user
// changes nothing and leaves no entry in that user's index; an entry that
// names another user's record (as a crash could leave) is skipped and
// removed by List.
func TestCreateDuplicateOfOtherUser(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		ctx := t.Context()
		alice := testRecord(t, "alice")
		require.NoError(t, s.Create(ctx, alice))

		impostor := testRecord(t, "mallory")
		impostor.ID = alice.ID
		require.ErrorIs(t, s.Create(ctx, impostor), apikeys.ErrDuplicate)
		assert.Empty(t, indexMembers(t, s, rdb, "mallory"))
		got, err := s.Get(ctx, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, "alice", got.UserID)
		assert.Equal(t, alice.Digest, got.Digest)

		// A retry of alice's own Create (same id, user and digest) is the
		// same write, not a duplicate.
		require.NoError(t, s.Create(ctx, alice))
		// A different record of alice's with that id is a duplicate, and
		// alice's entry stays.
		again := testRecord(t, "alice")
		again.ID = alice.ID
		require.ErrorIs(t, s.Create(ctx, again), apikeys.ErrDuplicate)
		assert.Equal(t, []uuid.UUID{alice.ID}, listIDs(t, s, "alice", 10))

		require.NoError(t, rdb.ZAdd(ctx, s.indexKey("mallory"), redis.Z{Member: alice.ID.String()}).Err())
		assert.Empty(t, listIDs(t, s, "mallory", 10), "mallory must not list alice's key")
		assert.Empty(t, indexMembers(t, s, rdb, "mallory"))
		assert.Equal(t, []uuid.UUID{alice.ID}, listIDs(t, s, "alice", 10))
	})
}

// TestBadData: whatever is wrong in Redis is an error, never ErrNotFound,
// and is never mistaken for a record.
func TestBadData(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		ctx := t.Context()
		tests := []struct {
			name  string
			write func(key string) error
		}{
			{"not a hash", func(key string) error { return rdb.Set(ctx, key, "x", 0).Err() }},
			{"missing fields", func(key string) error { return rdb.HSet(ctx, key, "user_id", "alice").Err() }},
			{"short digest", func(key string) error {
				rec := testRecord(t, "alice")
				args := appendFields(nil, &rec, writeAll)
				args = append(args, "digest", "abc")
				return rdb.HSet(ctx, key, args...).Err()
			}},
			{"bad time", func(key string) error {
				rec := testRecord(t, "alice")
				args := appendFields(nil, &rec, writeAll)
				args = append(args, "created_at", "yesterday")
				return rdb.HSet(ctx, key, args...).Err()
			}},
			{"bad list", func(key string) error {
				rec := testRecord(t, "alice")
				args := appendFields(nil, &rec, writeAll)
				args = append(args, "origins", "[oops")
				return rdb.HSet(ctx, key, args...).Err()
			}},
			{"bad successor id", func(key string) error {
				rec := testRecord(t, "alice")
				args := appendFields(nil, &rec, writeAll)
				args = append(args, "successor_id", "not-a-uuid")
				return rdb.HSet(ctx, key, args...).Err()
			}},
			{"successor id not canonical", func(key string) error {
				rec := testRecord(t, "alice")
				args := appendFields(nil, &rec, writeAll)
				args = append(args, "successor_id", strings.ToUpper(rec.SuccessorID.String()))
				return rdb.HSet(ctx, key, args...).Err()
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := uuid.Must(uuid.NewV7())
				require.NoError(t, tt.write(s.recordKey(id.String())))
				_, err := s.Get(ctx, id)
				require.Error(t, err)
				assert.NotErrorIs(t, err, apikeys.ErrNotFound)
				assert.Contains(t, err.Error(), "redisstore: get: ")
				_, spent, err := s.Spend(ctx, apikeys.SpendRequest{ID: id, Digest: apikeys.Digest{}, Cost: 1, Now: 1})
				require.Error(t, err, "Spend")
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Spend")
				assert.Contains(t, err.Error(), "redisstore: spend: ")
				assert.False(t, spent, "Spend")
			})
		}
	})
}

// TestContextErrors: a done context fails every method with the context's
// error, wrapped, before anything is sent.
func TestContextErrors(t *testing.T) {
	t.Parallel()
	s, _, mr := newStore(t, backends[0], nil)
	rec := testRecord(t, "alice")
	require.NoError(t, s.Create(t.Context(), rec))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel2)
	before := mr.CommandCount()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		for name, err := range storeOps(c.ctx, s, rec) {
			assert.ErrorIs(t, err, c.want, name)
			assert.NotErrorIs(t, err, apikeys.ErrNotFound, name)
		}
	}
	assert.Equal(t, before, mr.CommandCount(), "commands sent with a done context")
}

// storeOps runs every Store method once with ctx and returns their errors.
func storeOps(ctx context.Context, s *Store, rec apikeys.Record) map[string]error {
	fresh := rec
	fresh.ID = uuid.Must(uuid.NewV7())
	up := rec
	up.Version++
	_, getErr := s.Get(ctx, rec.ID)
	_, listErr := s.List(ctx, rec.UserID, apikeys.ListQuery{Limit: 10})
	_, _, spendErr := s.Spend(ctx, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
	return map[string]error{
		"Spend":         spendErr,
		"Refund":        s.Refund(ctx, apikeys.RefundRequest{ID: rec.ID, Cost: 1}),
		"Create":        s.Create(ctx, fresh),
		"Get":           getErr,
		"List":          listErr,
		"Update":        s.Update(ctx, up),
		"Delete":        s.Delete(ctx, rec.UserID, rec.ID),
		"TouchLastUsed": s.TouchLastUsed(ctx, []apikeys.Use{{ID: rec.ID, At: rec.LastUsedAt.Add(time.Hour)}}),
	}
}

var errCrash = errors.New("simulated crash")

func TestListEncoding(t *testing.T) {
	t.Parallel()
	lists := [][]string{
		nil,
		{""},
		{"", ""},
		{"https://app.example.com", "https://*.example.org:8443"},
		{`a","b`},
		{`quote"`, `back\slash`, `["x"]`},
		{"<html>&", "✓ ünïcode", "tab\there"},
		{`","`, `"`, `,`},
	}
	for _, l := range lists {
		enc := encodeList(l)
		got, err := decodeList(enc)
		require.NoError(t, err, enc)
		if len(l) == 0 {
			assert.Empty(t, got, enc)
			continue
		}
		assert.Equal(t, l, got, enc)
	}
	// JSON written by hand, as encoding/json reads it.
	for enc, want := range map[string][]string{
		`[ "a", "b" ]`:   {"a", "b"},
		`["a", "b"]`:     {"a", "b"},
		`["a\u0022b"]`:   {`a"b`},
		`["a"  ,  "b" ]`: {"a", "b"},
	} {
		got, err := decodeList(enc)
		require.NoError(t, err, enc)
		assert.Equal(t, want, got, enc)
	}
	for _, bad := range []string{`["a"`, `[1]`, `{"a":1}`, `["a","b"`} {
		_, err := decodeList(bad)
		assert.Error(t, err, bad)
	}
}

// TestLastUsedComparesExactly: the scripts compare last_used_at exactly,
// also where Unix microseconds exceed 2^53 (after the year 2255), which a
// Lua number (a double) rounds, and before 1970.
func TestLastUsedComparesExactly(t *testing.T) {
	t.Parallel()
	late := time.Date(9999, 12, 31, 23, 59, 59, 999998000, time.UTC)
	early := time.Date(1969, 7, 20, 20, 17, 40, 5000, time.UTC)
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	µs := time.Microsecond
	tests := []struct {
		name          string
		stored        time.Time
		touch         time.Time // a TouchLastUsed; zero: none
		update        bool      // then an Update writing written
		written, want time.Time
	}{
		{"touch 1µs later, year 9999", late, late.Add(µs), false, time.Time{}, late.Add(µs)},
		{"touch 1µs earlier, year 9999", late.Add(µs), late, false, time.Time{}, late.Add(µs)},
		{"update 1µs earlier, year 9999", late.Add(µs), time.Time{}, true, late, late.Add(µs)},
		{"update 1µs later, year 9999", late, time.Time{}, true, late.Add(µs), late.Add(µs)},
		{"touch later, before 1970", early, early.Add(µs), false, time.Time{}, early.Add(µs)},
		{"touch earlier, before 1970", early, early.Add(-µs), false, time.Time{}, early},
		{"update earlier, before 1970", early, time.Time{}, true, early.Add(-time.Second), early},
		{"update later, before 1970", early, time.Time{}, true, early.Add(µs), early.Add(µs)},
		{"touch after 1970 over before", early, at, false, time.Time{}, at},
		{"update before 1970 under after", at, time.Time{}, true, early, at},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, nil)
		for _, tt := range tests {
			rec := testRecord(t, "exact-user")
			rec.LastUsedAt = tt.stored
			require.NoError(t, s.Create(t.Context(), rec), tt.name)
			if !tt.touch.IsZero() {
				require.NoError(t, s.TouchLastUsed(t.Context(), []apikeys.Use{{ID: rec.ID, At: tt.touch}}), tt.name)
			}
			if tt.update {
				up := rec
				up.LastUsedAt = tt.written
				up.Version++
				require.NoError(t, s.Update(t.Context(), up), tt.name)
			}
			got, err := s.Get(t.Context(), rec.ID)
			require.NoError(t, err, tt.name)
			assert.Truef(t, got.LastUsedAt.Equal(tt.want), "%s: LastUsedAt = %v, want %v", tt.name, got.LastUsedAt, tt.want)
		}
	})
}

func TestRecordKeyOf(t *testing.T) {
	s := &Store{ns: "apikeys-test:"}
	for range 100 {
		id := uuid.New()
		if got, want := s.recordKeyOf(id), s.recordKey(id.String()); got != want {
			t.Fatalf("recordKeyOf = %q, want %q", got, want)
		}
		if !canonicalUUID(id.String()) || canonicalUUID(strings.ToUpper(id.String())) || canonicalUUID("{"+id.String()+"}") {
			t.Fatal("canonicalUUID")
		}
	}
}

// TestDecodeListInto: with room in the arena or without, lists decode
// exactly as encoding/json decodes them (anything but an array an error),
// and never let one list reach another.
func TestDecodeListInto(t *testing.T) {
	for _, v := range []string{`[]`, `[""]`, `["a"]`, `["a","b"]`, `["a\"b","c"]`, `["a","b\\"]`, `["x","y","z"]`, `["a" ,"b"]`, `["a"",""b"]`, "[\"a\x01\"]", "[\"\xff\"]", `[1]`, `null`, ``, `["a","b"`} {
		var want []string
		wantErr := json.Unmarshal([]byte(v), &want)
		if tr := strings.TrimSpace(v); tr == "" || tr[0] != '[' {
			wantErr = errors.New("not an array")
		}
		if len(want) == 0 || wantErr != nil {
			want = nil
		}
		for _, room := range []int{0, 1, 2, 8} {
			arena := make([]string, 1, 1+room)
			got, err := decodeListInto(&arena, v)
			if (err == nil) != (wantErr == nil) || !slices.Equal(got, want) {
				t.Errorf("decodeListInto(%q) with room %d = %q, %v; want %q, %v", v, room, got, err, want, wantErr)
			}
			if len(got) > 0 && cap(got) != len(got) && &got[0] == &arena[:cap(arena)][1] {
				t.Errorf("decodeListInto(%q): not capped", v)
			}
		}
	}
}

// FuzzDecodeList: the list decoder of the authorization path, split fast
// path and arena included, agrees with encoding/json on every input, and
// refuses whatever is not an array.
func FuzzDecodeList(f *testing.F) {
	for _, v := range []string{`[]`, `[""]`, `["a","b"]`, `["a\"b","c"]`, `["a"",""b"]`, `["a" ,"b"]`, `null`, ``, ` []`, `[1]`} {
		f.Add(v, uint8(2))
	}
	f.Fuzz(func(t *testing.T, v string, room uint8) {
		var want []string
		wantErr := json.Unmarshal([]byte(v), &want)
		if tr := strings.TrimSpace(v); tr == "" || tr[0] != '[' {
			wantErr = errors.New("not an array")
		}
		if len(want) == 0 || wantErr != nil {
			want = nil
		}
		arena := make([]string, 1, 1+int(room%8))
		got, err := decodeListInto(&arena, v)
		if (err == nil) != (wantErr == nil) || !slices.Equal(got, want) {
			t.Fatalf("decodeListInto(%q) = %q, %v; encoding/json: %q, %v", v, got, err, want, wantErr)
		}
		if cap(got) != len(got) {
			t.Fatalf("decodeListInto(%q): not capped", v)
		}
	})
}
