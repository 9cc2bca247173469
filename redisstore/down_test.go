package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
)

// TestRedisDown: with Redis unreachable, or hanging, every store call
// fails, ended by its context's deadline or the refusal, with an error that
// is not ErrNotFound, and the Manager fails closed. (For a Redis that
// accepts connections and then hangs, the deadline reaches the socket only
// with ContextTimeoutEnabled; without it go-redis waits ReadTimeout.)
//
// No duration is asserted (issue 10): the clients' own timeouts are an
// hour, so only the context can end a call against the stuck server, and a
// call that ignored it would still be running when the test gives up on it.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	const (
		deadline = 300 * time.Millisecond
		// Far beyond the test: only the context can end a call.
		clientTimeout = time.Hour
		// How long the test waits for the calls before it reports them
		// hung: a guard against a broken store, not a timing.
		guard = time.Minute
	)
	closed, stuck := faultproxy.RefusedAddr(t), faultproxy.SilentAddr(t)
	clients := map[string]redis.UniversalClient{
		"closed port/client": redis.NewClient(&redis.Options{
			Addr: closed, DialTimeout: clientTimeout, ReadTimeout: clientTimeout, WriteTimeout: clientTimeout,
		}),
		"closed port/cluster client": redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: []string{closed}, DialTimeout: clientTimeout, ReadTimeout: clientTimeout, WriteTimeout: clientTimeout,
		}),
		"stuck server/client": redis.NewClient(&redis.Options{
			Addr: stuck, ContextTimeoutEnabled: true,
			DialTimeout: clientTimeout, ReadTimeout: clientTimeout, WriteTimeout: clientTimeout,
		}),
		"stuck server/cluster client": redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: []string{stuck}, ContextTimeoutEnabled: true,
			DialTimeout: clientTimeout, ReadTimeout: clientTimeout, WriteTimeout: clientTimeout,
		}),
	}
	// A well-formed key from a working store: Authorize must reach the
	// store to refuse it.
	live, _, _ := newStore(t, backends[0], nil)
	liveM, err := apikeys.New(live, nil)
	require.NoError(t, err)
	nk, err := liveM.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "alice"})
	require.NoError(t, err)

	for name, rdb := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Cleanup(func() { _ = rdb.Close() })
			s, err := New(rdb, nil)
			require.NoError(t, err)
			m, err := apikeys.New(s, nil)
			require.NoError(t, err)
			rec := testRecord(t, "alice")

			ops := map[string]func(ctx context.Context) error{
				"Store.Create": func(ctx context.Context) error { return s.Create(ctx, rec) },
				"Store.Get":    func(ctx context.Context) error { _, err := s.Get(ctx, rec.ID); return err },
				"Store.List": func(ctx context.Context) error {
					_, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 10})
					return err
				},
				"Store.Update": func(ctx context.Context) error { up := rec; up.Version = 2; return s.Update(ctx, up) },
				"Store.Delete": func(ctx context.Context) error { return s.Delete(ctx, "alice", rec.ID) },
				"Manager.Authorize": func(ctx context.Context) error {
					_, err := m.Authorize(ctx, nk.Value, apikeys.Request{})
					return wantStoreError(err)
				},
				"Manager.Get": func(ctx context.Context) error {
					_, err := m.Get(ctx, "alice", uuid.Must(uuid.NewV7()))
					return wantStoreError(err)
				},
				"Manager.Create": func(ctx context.Context) error {
					_, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
					return wantStoreError(err)
				},
				"Manager.List": func(ctx context.Context) error {
					_, err := m.List(ctx, "alice", apikeys.ListParams{})
					return wantStoreError(err)
				},
			}
			// All at once: each waits for its deadline, and parallel
			// subtests would queue behind GOMAXPROCS.
			type result struct {
				err     error
				elapsed time.Duration
			}
			results := make(map[string]result, len(ops))
			var mu sync.Mutex
			var wg sync.WaitGroup
			for op, fn := range ops {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), deadline)
					defer cancel()
					start := time.Now()
					err := fn(ctx)
					mu.Lock()
					results[op] = result{err, time.Since(start)}
					mu.Unlock()
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(guard):
				t.Fatalf("calls with a %v deadline still running after %v: the deadline does not reach them", deadline, guard)
			}
			for op, r := range results {
				if !assert.Error(t, r.err, op) {
					continue
				}
				assert.NotErrorIs(t, r.err, apikeys.ErrNotFound, op)
				assert.NotErrorIs(t, r.err, apikeys.ErrInvalidKey, "%s: a store failure must not look like a bad key", op)
				assert.NotErrorIs(t, r.err, errNotStoreError, op)
				t.Logf("%s failed in %v: %v", op, r.elapsed.Round(time.Millisecond), r.err)
			}
		})
	}
}

var errNotStoreError = errors.New("the Manager did not return a *apikeys.StoreError")

// wantStoreError passes on a *apikeys.StoreError and turns anything else
// into an error wrapping errNotStoreError (or nil into that error).
func wantStoreError(err error) error {
	var se *apikeys.StoreError
	if errors.As(err, &se) {
		return err
	}
	return errors.Join(errNotStoreError, err)
}
