package apikeys_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// Review 7, finding 1: a Key that Authorize returns with a refusal (wrong
// origin, scope, assistant, address, private required) for a limited key
// read in place (memstore through Viewer, or the cache, which with
// memstore holds memstore's own Shared) carries rec.Key's RateLimit and
// Credits pointers: the ones the store's stored record holds. memstore's
// Spend clones its limits from that record, so a caller writing through
// them (or calling the exported k.Charge / k.Refund, which write
// k.Credits.Remaining in place) changes what every later Authorize
// decides and what Get/List return. Before issue 17 memstore's Get gave
// Authorize a private copy. Unlike the lists, nothing detects or repairs
// the change. The same holds for a browser token's refusal: publicCopy
// copies Credits but not RateLimit, which is the parent's, read in place.
//
// Fix: when sh != nil, give k copies of RateLimit and Credits (only a
// refusal of a limited key reaches that point with sh still set, so the
// allowed path stays allocation-free); in publicCopy copy RateLimit too.
func TestReview7RefusedKeyLimitPointersReachStore(t *testing.T) {
	t.Parallel()
	const origin, evil = "https://app.example", "https://evil.example"
	for _, tc := range []struct {
		name string
		cfg  func() *apikeys.Config
	}{
		{"memstore", func() *apikeys.Config { return &apikeys.Config{} }},
		{"cached", func() *apikeys.Config { return &apikeys.Config{Cache: &apikeys.CacheConfig{}} }},
	} {
		t.Run(tc.name+"/credits", func(t *testing.T) {
			t.Parallel()
			s := memstore.New()
			m, err := apikeys.New(s, tc.cfg())
			require.NoError(t, err)
			t.Cleanup(func() { _ = m.Close(t.Context()) })
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "w", UserID: "alice",
				AllowedOrigins: []string{origin}, Credits: credits(1)})
			require.NoError(t, err)

			k, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: evil})
			require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
			require.NotNil(t, k.Credits)
			k.Credits.Remaining = 1000 // misuse of a "read-only" pointer

			got, err := m.Get(t.Context(), "alice", nk.ID)
			require.NoError(t, err)
			assert.Equal(t, int64(1), got.Credits.Remaining, "Get shows what a caller wrote into a refused Key")

			allowed := 0
			for range 5 {
				if _, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: origin}); err == nil {
					allowed++
				}
			}
			assert.Equal(t, 1, allowed, "a key with 1 credit was allowed more than once after a caller wrote into a refused Key's Credits")
		})
		t.Run(tc.name+"/ratelimit", func(t *testing.T) {
			t.Parallel()
			s := memstore.New()
			m, err := apikeys.New(s, tc.cfg())
			require.NoError(t, err)
			t.Cleanup(func() { _ = m.Close(t.Context()) })
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "w", UserID: "alice",
				AllowedOrigins: []string{origin}, RateLimit: &apikeys.RateLimit{Limit: 1, WindowSeconds: 3600}})
			require.NoError(t, err)

			k, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: evil})
			require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
			require.NotNil(t, k.RateLimit)
			k.RateLimit.Limit = 1000

			allowed := 0
			for range 5 {
				if _, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: origin}); err == nil {
					allowed++
				}
			}
			assert.Equal(t, 1, allowed, "a key limited to 1 per hour was allowed more than once after a caller wrote into a refused Key's RateLimit")
		})
		t.Run(tc.name+"/Charge on a refused key", func(t *testing.T) {
			t.Parallel()
			s := memstore.New()
			m, err := apikeys.New(s, tc.cfg())
			require.NoError(t, err)
			t.Cleanup(func() { _ = m.Close(t.Context()) })
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "w", UserID: "alice",
				AllowedOrigins: []string{origin}, Credits: credits(5)})
			require.NoError(t, err)
			k, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: evil})
			require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
			// "Would 5 more pass?": an exported method, on the caller's Key.
			require.NoError(t, k.Charge(5, time.Now().Unix()))
			got, err := m.Get(t.Context(), "alice", nk.ID)
			require.NoError(t, err)
			assert.Equal(t, int64(5), got.Credits.Remaining, "Key.Charge on a refused Key spent the store's credits")
		})
	}

	t.Run("token/ratelimit", func(t *testing.T) {
		t.Parallel()
		tk, err := apikeys.NewTokenKey()
		require.NoError(t, err)
		s := memstore.New() // itself: the Manager reads it with View
		m, err := apikeys.New(s, &apikeys.Config{TokenKeys: []apikeys.TokenKey{tk}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(t.Context()) })
		parent, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "p", UserID: "alice",
			RateLimit: &apikeys.RateLimit{Limit: 1, WindowSeconds: 3600}})
		require.NoError(t, err)
		tok, err := m.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: parent.ID, AllowedOrigins: &[]string{origin}})
		require.NoError(t, err)

		k, err := m.Authorize(t.Context(), tok.Token, apikeys.Request{Origin: evil})
		require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
		require.NotNil(t, k.RateLimit)
		k.RateLimit.Limit = 1000

		got, err := m.Get(t.Context(), "alice", parent.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.RateLimit.Limit, "Get shows what a caller wrote into a refused token Key's RateLimit")
		allowed := 0
		for range 5 {
			if _, err := m.Authorize(t.Context(), tok.Token, apikeys.Request{Origin: origin}); err == nil {
				allowed++
			}
		}
		assert.Equal(t, 1, allowed, "a parent limited to 1 per hour was allowed more than once")
	})
}

// capIPsStore returns AllowedIPs as an empty list with spare capacity, as
// a third-party Store may (make([]netip.Prefix, 0, n) then no match).
type capIPsStore struct{ apikeys.Store }

func (s capIPsStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	rec, err := s.Store.Get(ctx, id)
	if err == nil && len(rec.AllowedIPs) == 0 {
		rec.AllowedIPs = make([]netip.Prefix, 0, 4)
	}
	return rec, err
}

// Review 7, finding 2 (low): Authorize documents "Every list is capped at
// its length, so that append always copies". share (cachedGet, for a
// store that is not a Viewer) clones AllowedIPs only when it is not
// empty, so an empty list with spare capacity from the store becomes the
// list every later caller is lent: two callers that append to their
// (empty) AllowedIPs write into one array, and one sees the other's
// address. Fix: in share, set sh.out.ips (and sh.rec.AllowedIPs) to a
// capped slice (s[:0:0] or slices.Clip) when empty too.
func TestReview7EmptyAllowedIPsNotCapped(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(capIPsStore{memstore.New()}, &apikeys.Config{Cache: &apikeys.CacheConfig{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(t.Context()) })
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "w", UserID: "alice"})
	require.NoError(t, err)
	k1, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	k2, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	assert.Equal(t, len(k1.AllowedIPs), cap(k1.AllowedIPs), "the lent AllowedIPs is not capped at its length")
	a := append(k1.AllowedIPs, netip.MustParsePrefix("10.0.0.0/8"))
	_ = append(k2.AllowedIPs, netip.MustParsePrefix("192.0.2.0/24"))
	assert.Equal(t, "10.0.0.0/8", a[0].String(), "another caller's append overwrote this caller's list")
}
