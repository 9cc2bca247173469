package apikeys_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// writeCountingStore counts every write and records TouchLastUsed batches.
// touched, when not nil, receives (without blocking) after each successful
// TouchLastUsed write to the underlying store.
type writeCountingStore struct {
	*memstore.Store
	writes  atomic.Int64
	mu      sync.Mutex
	batches [][]apikeys.Use
	fail    atomic.Int32 // TouchLastUsed calls still to fail
	touched chan struct{}
}

func (s *writeCountingStore) Create(ctx context.Context, r apikeys.Record) error {
	s.writes.Add(1)
	return s.Store.Create(ctx, r)
}

func (s *writeCountingStore) Update(ctx context.Context, r apikeys.Record) error {
	s.writes.Add(1)
	return s.Store.Update(ctx, r)
}

func (s *writeCountingStore) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	s.writes.Add(1)
	if s.fail.Add(-1) >= 0 {
		return errors.New("store down")
	}
	s.mu.Lock()
	s.batches = append(s.batches, uses)
	s.mu.Unlock()
	err := s.Store.TouchLastUsed(ctx, uses)
	// Signal only once the write is done (and succeeded): a test that
	// waits on touched then reads what was written.
	if err == nil && s.touched != nil {
		select {
		case s.touched <- struct{}{}:
		default:
		}
	}
	return err
}

func TestLastUsedOffRequestPath(t *testing.T) {
	t.Parallel()
	s, c := &writeCountingStore{Store: memstore.New()}, newClock()
	m, err := apikeys.New(s, &apikeys.Config{Now: c.now, LastUsedInterval: time.Hour})
	require.NoError(t, err)
	var keys []apikeys.NewKey
	for range 3 {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
		require.NoError(t, err)
		keys = append(keys, nk)
	}
	firstUse := c.now()
	before := s.writes.Load()
	for range 50 {
		for _, k := range keys {
			_, err := m.Authorize(t.Context(), k.Value, apikeys.Request{})
			require.NoError(t, err)
		}
		c.advance(time.Second)
	}
	_, _ = m.Authorize(t.Context(), "garbage", apikeys.Request{})
	assert.Equal(t, before, s.writes.Load(), "150 authorizations wrote nothing")

	require.NoError(t, m.Close(t.Context()))
	require.Len(t, s.batches, 1, "Close writes one batch")
	assert.Len(t, s.batches[0], 3)
	for _, k := range keys {
		rec, err := s.Store.Get(t.Context(), k.ID)
		require.NoError(t, err)
		assert.Equal(t, firstUse, rec.LastUsedAt, "the first use in the interval")
	}
	require.NoError(t, m.Close(t.Context()), "Close twice")
	assert.Len(t, s.batches, 1)
}

func TestLastUsedFlushedInBackground(t *testing.T) {
	t.Parallel()
	s := &writeCountingStore{Store: memstore.New(), touched: make(chan struct{}, 1)}
	m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	select {
	case <-s.touched:
	case <-time.After(time.Minute): // a bound for a broken flusher, not a timing
		t.Fatal("the background flusher never wrote")
	}
	k, err := m.Get(t.Context(), "u", nk.ID)
	require.NoError(t, err)
	assert.False(t, k.LastUsedAt.IsZero())
}

func TestLastUsedRetriedAfterFailure(t *testing.T) {
	t.Parallel()
	s := &writeCountingStore{Store: memstore.New()}
	m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: time.Hour})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	s.fail.Store(1)
	err = m.Close(t.Context())
	var se *apikeys.StoreError
	require.ErrorAs(t, err, &se, "a failed flush is reported")
	require.NoError(t, m.Close(t.Context()), "and kept for the next flush")
	require.Len(t, s.batches, 1)
	assert.Equal(t, nk.ID, s.batches[0][0].ID)
}

func TestLastUsedOff(t *testing.T) {
	t.Parallel()
	s := &writeCountingStore{Store: memstore.New()}
	m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	require.NoError(t, m.Close(t.Context()))
	assert.Empty(t, s.batches)
}
