package redisstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// waitFor receives from ch or fails after a generous deadline.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestSubscribeResetsOnReconnect: the subscription reports a reset when it
// starts, when Redis goes away and when it is back, and delivers changes
// before and after.
func TestSubscribeResetsOnReconnect(t *testing.T) {
	t.Parallel()
	s, _, mr := newStore(t, backends[0], nil)
	changes, resets := make(chan uuid.UUID, 16), make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- s.Subscribe(ctx, func(id uuid.UUID) { changes <- id }, func() { resets <- struct{}{} })
	}()
	waitFor(t, resets, "the first subscription")
	id := uuid.Must(uuid.NewV7())
	require.NoError(t, s.Publish(t.Context(), id))
	require.Equal(t, id, waitFor(t, changes, "a change"))

	mr.Close()
	waitFor(t, resets, "a reset when Redis went away")
	require.NoError(t, mr.Restart())
	// Resets keep coming while reconnecting; after the resubscription a
	// published change arrives again.
	id2 := uuid.Must(uuid.NewV7())
	deadline := time.Now().Add(10 * time.Second)
	for got := false; !got; {
		require.True(t, time.Now().Before(deadline), "no change delivered after Redis came back")
		select {
		case <-resets:
			_ = s.Publish(t.Context(), id2) // subscribed again, or about to be
		case c := <-changes:
			got = c == id2
		case <-time.After(100 * time.Millisecond):
			_ = s.Publish(t.Context(), id2)
		}
	}
	cancel()
	require.NoError(t, waitFor(t, done, "Subscribe to return"))
}

// hookedInvalidator passes Publish and Subscribe through to an
// Invalidator and tells the test what the subscriber did: each change id
// after the Manager's onChange has run (so its cache has dropped the key),
// and each reset after the Manager's onReset.
type hookedInvalidator struct {
	apikeys.Invalidator
	changes chan uuid.UUID
	resets  chan struct{}
}

func newHookedInvalidator(inv apikeys.Invalidator) *hookedInvalidator {
	return &hookedInvalidator{Invalidator: inv, changes: make(chan uuid.UUID, 64), resets: make(chan struct{}, 1)}
}

func (h *hookedInvalidator) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	return h.Invalidator.Subscribe(ctx, func(id uuid.UUID) {
		onChange(id)
		select {
		case h.changes <- id:
		case <-ctx.Done():
		}
	}, func() {
		onReset()
		select {
		case h.resets <- struct{}{}:
		default: // the test waits for the first one only
		}
	})
}

// readCountingStore counts the Manager's record reads.
type readCountingStore struct {
	*Store
	gets atomic.Int64
}

func (s *readCountingStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

// TestRevocationPropagation: a key deleted through Manager A is refused by
// Manager B, which had it cached for an hour, as soon as B's subscription
// has delivered the change: the revocation reaches B through pub/sub, long
// before the cache TTL. How soon is measured by BenchmarkRevocation in
// benchmarks/; this test asserts no duration.
func TestRevocationPropagation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		storeA, rdb, _ := newStore(t, b, nil)
		storeB, err := New(rdb, &Config{Namespace: storeA.ns})
		require.NoError(t, err)
		a, err := apikeys.New(storeA, &apikeys.Config{Invalidator: storeA, LastUsedInterval: -1}) // publishes, no cache
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, a.Close(context.Background())) })
		readsB, hook := &readCountingStore{Store: storeB}, newHookedInvalidator(storeB)
		bm, err := apikeys.New(readsB, &apikeys.Config{
			Cache:            &apikeys.CacheConfig{TTL: time.Hour, NegativeTTL: time.Hour},
			Invalidator:      hook,
			LastUsedInterval: -1,
		})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bm.Close(context.Background())) })
		waitFor(t, hook.resets, "B's subscription") // changes published from now on reach B

		for i := range 20 {
			nk, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
			require.NoError(t, err)
			_, err = bm.Authorize(t.Context(), nk.Value, apikeys.Request{}) // now cached in B
			require.NoError(t, err)
			reads := readsB.gets.Load()
			_, err = bm.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err)
			require.Equal(t, reads, readsB.gets.Load(), "trial %d: B answers from its cache, without a store read", i)

			_, err = a.Delete(t.Context(), "u", nk.ID)
			require.NoError(t, err)
			for got := uuid.Nil; got != nk.ID; {
				got = waitFor(t, hook.changes, "the deletion to reach B")
			}
			_, err = bm.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.ErrorIs(t, err, apikeys.ErrInvalidKey, "trial %d: B still accepts a deleted key, cached for an hour", i)
			require.Greater(t, readsB.gets.Load(), reads, "trial %d: B refused the key without reading the store", i)
		}
	})
}
