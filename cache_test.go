package apikeys_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// countingStore counts Gets and can hold one Get until released, to stage
// a read that straddles a delete.
type countingStore struct {
	*memstore.Store
	gets  atomic.Int64
	hold  atomic.Bool
	held  chan struct{} // a held Get has read the store and waits
	carry chan struct{} // closing it lets the held Get return
}

func newCountingStore() *countingStore {
	return &countingStore{Store: memstore.New(), held: make(chan struct{}), carry: make(chan struct{})}
}

func (s *countingStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	s.gets.Add(1)
	rec, err := s.Store.Get(ctx, id)
	if s.hold.CompareAndSwap(true, false) {
		s.held <- struct{}{}
		<-s.carry
	}
	return rec, err
}

func cachedEnv(t *testing.T, s apikeys.Store, c *clock, inv apikeys.Invalidator) *apikeys.Manager {
	t.Helper()
	m, err := apikeys.New(s, &apikeys.Config{
		Now: c.now, Invalidator: inv,
		Cache: &apikeys.CacheConfig{TTL: time.Minute, NegativeTTL: 10 * time.Second},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m
}

func TestCacheServesRepeats(t *testing.T) {
	t.Parallel()
	s, c := newCountingStore(), newClock()
	m := cachedEnv(t, s, c, nil)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u", AllowedOrigins: []string{"https://a.example"}})
	require.NoError(t, err)
	for range 5 {
		_, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://a.example"})
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), s.gets.Load(), "one store read for five requests")

	// A wrong secret for a cached id is still refused, from the cache.
	_, err = m.Authorize(t.Context(), wrongSecret(t, nk), apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey)
	assert.Equal(t, int64(1), s.gets.Load())

	// Restrictions are checked on cached entries too.
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://b.example"})
	assert.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)

	// The caller's copy is its own.
	k, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://a.example"})
	require.NoError(t, err)
	k.AllowedOrigins[0] = "https://evil.example"
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://a.example"})
	assert.NoError(t, err, "mutating a returned key changed the cache")

	// Expiry counts even for cached keys; the TTL ends entries.
	c.advance(time.Minute)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://a.example"})
	require.NoError(t, err)
	assert.Equal(t, int64(2), s.gets.Load(), "read again after the TTL")
}

func wrongSecret(t *testing.T, nk apikeys.NewKey) string {
	t.Helper()
	k, err := apikeys.GenerateKey("ak", nk.Type, nk.ID)
	require.NoError(t, err)
	return k
}

func TestCacheNegative(t *testing.T) {
	t.Parallel()
	s, c := newCountingStore(), newClock()
	m := cachedEnv(t, s, c, nil)
	unknown, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	for range 3 {
		_, err := m.Authorize(t.Context(), unknown, apikeys.Request{})
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
	}
	assert.Equal(t, int64(1), s.gets.Load())
	c.advance(10 * time.Second)
	_, err = m.Authorize(t.Context(), unknown, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrInvalidKey)
	assert.Equal(t, int64(2), s.gets.Load(), "negative entries live NegativeTTL")
}

// TestCacheNegativeOff: a negative NegativeSize turns negative caching
// off, and only that: every unknown key reads the store, real keys are
// still cached.
func TestCacheNegativeOff(t *testing.T) {
	t.Parallel()
	s, c := newCountingStore(), newClock()
	m, err := apikeys.New(s, &apikeys.Config{Now: c.now, Cache: &apikeys.CacheConfig{NegativeSize: -1}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	unknown, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	for range 3 {
		_, err := m.Authorize(t.Context(), unknown, apikeys.Request{})
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
	}
	assert.Equal(t, int64(3), s.gets.Load(), "each unknown key reads the store")

	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	for range 3 {
		_, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	assert.Equal(t, int64(4), s.gets.Load(), "real keys are still cached")
}

func TestCacheMutationsThroughManager(t *testing.T) {
	t.Parallel()
	m := cachedEnv(t, newCountingStore(), newClock(), nil)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://b.example"})
	require.NoError(t, err)

	_, err = m.Update(t.Context(), "u", nk.ID, apikeys.UpdateParams{AllowedOrigins: &[]string{"https://a.example"}})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://b.example"})
	assert.ErrorIs(t, err, apikeys.ErrOriginNotAllowed, "an update takes effect at once")

	rotated, err := m.Rotate(t.Context(), "u", nk.ID, 0)
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://a.example"})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "a rotated-out key stops at once")

	_, err = m.Authorize(t.Context(), rotated.Value, apikeys.Request{Origin: "https://a.example"})
	require.NoError(t, err)
	_, err = m.Delete(t.Context(), "u", rotated.ID)
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), rotated.Value, apikeys.Request{Origin: "https://a.example"})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "a delete takes effect at once")
}

// TestCacheStaleReadNotCached: a store read that began before a delete and
// returns after it must not put the deleted key back in the cache.
func TestCacheStaleReadNotCached(t *testing.T) {
	t.Parallel()
	s := newCountingStore()
	m := cachedEnv(t, s, newClock(), nil)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)

	s.hold.Store(true)
	done := make(chan error)
	go func() {
		_, err := m.Authorize(context.Background(), nk.Value, apikeys.Request{})
		done <- err
	}()
	<-s.held // the read has the live record in hand
	_, err = m.Delete(t.Context(), "u", nk.ID)
	require.NoError(t, err)
	close(s.carry)
	require.NoError(t, <-done, "the straddling request was valid when it read")

	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "the stale read was cached")
}

// TestCacheWithoutNotificationsBoundedByTTL: another Manager, with no
// Invalidator, keeps a deleted key no longer than the TTL.
func TestCacheWithoutNotificationsBoundedByTTL(t *testing.T) {
	t.Parallel()
	s, c := memstore.New(), newClock()
	a, b := cachedEnv(t, s, c, nil), cachedEnv(t, s, c, nil)
	nk, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = b.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	_, err = a.Delete(t.Context(), "u", nk.ID)
	require.NoError(t, err)

	c.advance(time.Minute - time.Millisecond)
	_, err = b.Authorize(t.Context(), nk.Value, apikeys.Request{})
	assert.NoError(t, err, "without notifications B may serve its cached entry within the TTL")
	c.advance(time.Millisecond)
	_, err = b.Authorize(t.Context(), nk.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "never after the TTL")
}

// bus is an in-process Invalidator: every Publish reaches every
// subscriber. The real one (Redis pub/sub) is tested in redisstore.
type bus struct {
	mu     sync.Mutex
	subs   map[*func(uuid.UUID)]bool
	resets []func()
	ready  chan struct{}
}

func newBus() *bus { return &bus{subs: map[*func(uuid.UUID)]bool{}, ready: make(chan struct{}, 8)} }

func (b *bus) Publish(_ context.Context, id uuid.UUID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for fn := range b.subs {
		(*fn)(id)
	}
	return nil
}

func (b *bus) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	b.mu.Lock()
	b.subs[&onChange] = true
	b.resets = append(b.resets, onReset)
	b.mu.Unlock()
	onReset()
	b.ready <- struct{}{}
	<-ctx.Done()
	b.mu.Lock()
	delete(b.subs, &onChange)
	b.mu.Unlock()
	return nil
}

func (b *bus) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, fn := range b.resets {
		fn()
	}
}

func TestInvalidatorDropsKeyEverywhere(t *testing.T) {
	t.Parallel()
	s, c, inv := newCountingStore(), newClock(), newBus()
	b := cachedEnv(t, s, c, inv)
	<-inv.ready
	a, err := apikeys.New(s, &apikeys.Config{Now: c.now, Invalidator: inv}) // publishes only
	require.NoError(t, err)
	nk, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = b.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	_, err = a.Delete(t.Context(), "u", nk.ID)
	require.NoError(t, err)
	_, err = b.Authorize(t.Context(), nk.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "B dropped the key when A, without a cache, published the delete")

	// A reset (subscription dropped or re-established) flushes everything.
	other, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k2", UserID: "u"})
	require.NoError(t, err)
	_, err = b.Authorize(t.Context(), other.Value, apikeys.Request{})
	require.NoError(t, err)
	before := s.gets.Load()
	inv.reset()
	_, err = b.Authorize(t.Context(), other.Value, apikeys.Request{})
	require.NoError(t, err)
	assert.Equal(t, before+1, s.gets.Load(), "after a reset the key is read from the store again")
}

func TestCacheConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]*apikeys.Config{
		"negative TTL over TTL": {Cache: &apikeys.CacheConfig{TTL: time.Second, NegativeTTL: time.Minute}},
		"negative size":         {Cache: &apikeys.CacheConfig{Size: -1}},
	} {
		_, err := apikeys.New(memstore.New(), cfg)
		assert.Error(t, err, name)
	}
}

// lostReplyStore applies Update and Delete, then reports a failure, as
// when a reply is lost after the commit.
type lostReplyStore struct{ *memstore.Store }

var errLostReply = errors.New("i/o timeout")

func (s lostReplyStore) Update(ctx context.Context, r apikeys.Record) error {
	if err := s.Store.Update(ctx, r); err != nil {
		return err
	}
	return errLostReply
}

func (s lostReplyStore) Delete(ctx context.Context, user string, id uuid.UUID) error {
	if err := s.Store.Delete(ctx, user, id); err != nil {
		return err
	}
	return errLostReply
}

// TestCacheDroppedWhenWriteReportsFailure: a Delete or Update that was
// applied but reported an error must not leave the old key working from
// the cache, nor must the retry of such a Delete (found in review).
func TestCacheDroppedWhenWriteReportsFailure(t *testing.T) {
	t.Parallel()
	m := cachedEnv(t, lostReplyStore{memstore.New()}, newClock(), nil)
	mk := func() apikeys.NewKey {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://evil.example"})
		require.NoError(t, err, "cached")
		return nk
	}
	deleted := mk()
	_, err := m.Delete(t.Context(), "u", deleted.ID)
	require.ErrorIs(t, err, errLostReply)
	_, err = m.Delete(t.Context(), "u", deleted.ID)
	require.ErrorIs(t, err, apikeys.ErrNotFound, "the retry finds it gone")
	_, err = m.Authorize(t.Context(), deleted.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "a deleted key kept working from the cache")

	tightened := mk()
	_, err = m.Update(t.Context(), "u", tightened.ID, apikeys.UpdateParams{AllowedOrigins: &[]string{"https://good.example"}})
	require.ErrorIs(t, err, errLostReply)
	_, err = m.Authorize(t.Context(), tightened.Value, apikeys.Request{Origin: "https://evil.example"})
	assert.ErrorIs(t, err, apikeys.ErrOriginNotAllowed, "a tightened key kept its old restrictions in the cache")
}

// hungInvalidator never returns from Publish until its context ends.
type hungInvalidator struct{}

func (hungInvalidator) Publish(ctx context.Context, _ uuid.UUID) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hungInvalidator) Subscribe(ctx context.Context, _ func(uuid.UUID), _ func()) error {
	<-ctx.Done()
	return nil
}

// deadlineFreeStore hides memstore's Local marker, so that the Manager's
// OpTimeout applies, and runs the calls a Create and an Update make without
// their deadline: a short OpTimeout then bounds only what a test means it
// to (a hung notifier), never a memstore call that a loaded machine
// happened to deschedule for longer than that (issue 10).
type deadlineFreeStore struct{ apikeys.Store }

func (s deadlineFreeStore) Create(ctx context.Context, r apikeys.Record) error {
	return s.Store.Create(context.WithoutCancel(ctx), r)
}

func (s deadlineFreeStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	return s.Store.Get(context.WithoutCancel(ctx), id)
}

func (s deadlineFreeStore) Update(ctx context.Context, r apikeys.Record) error {
	return s.Store.Update(context.WithoutCancel(ctx), r)
}

// TestPublishBounded: a hung notifier cannot hang a change (found in
// review: publishing dropped every deadline).
func TestPublishBounded(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(deadlineFreeStore{memstore.New()}, &apikeys.Config{Invalidator: hungInvalidator{}, OpTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := m.Update(context.Background(), "u", nk.ID, apikeys.UpdateParams{Name: new("n")})
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "the update itself succeeded")
	case <-time.After(10 * time.Second):
		t.Fatal("Update hung on the notifier")
	}
}
