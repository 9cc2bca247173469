package apikeys_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// TestCacheForgedKeysCannotEvictRealKeys: the key format's checksum is a
// public CRC, so anyone can make well-formed keys with random ids, each of
// which costs a store read and is cached as "no such key". A flood of
// them must not push real keys out of the cache: 20,000 forgeries against
// a cache holding 500 real keys (in a Size several times smaller than the
// flood) leave every real key served from the cache.
func TestCacheForgedKeysCannotEvictRealKeys(t *testing.T) {
	t.Parallel()
	const (
		real   = 500
		forged = 20_000
		size   = 4096 // 64 per shard: room for 500 real keys, a fifth of the flood
		userID = "u"
		ttl    = time.Hour // with the test's clock standing still, nothing expires
	)
	s, c := newCountingStore(), newClock()
	m, err := apikeys.New(s, &apikeys.Config{
		Now:              c.now,
		LastUsedInterval: -1,
		Cache:            &apikeys.CacheConfig{Size: size, TTL: ttl, NegativeTTL: ttl},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })

	keys := make([]string, real)
	for i := range keys {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "real", UserID: userID})
		require.NoError(t, err)
		keys[i] = nk.Value
	}
	authorizeAll := func() {
		t.Helper()
		for _, k := range keys {
			_, err := m.Authorize(t.Context(), k, apikeys.Request{})
			require.NoError(t, err)
		}
	}
	authorizeAll() // fills the cache
	before := s.gets.Load()
	authorizeAll()
	require.Equal(t, before, s.gets.Load(), "precondition: every real key is cached")

	for range forged {
		// A random id, a random secret and a valid checksum: what anyone
		// can make from the documented format.
		k, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.New())
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), k, apikeys.Request{})
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
	}
	afterFlood := s.gets.Load()
	require.Equal(t, before+forged, afterFlood, "each forgery is one store read")

	authorizeAll()
	assert.Equal(t, int64(0), s.gets.Load()-afterFlood,
		"store reads for %d real keys after a flood of %d forged keys: forged keys evicted real ones", real, forged)
}
