package redisstore

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
)

// countingInvalidator passes Publish and Subscribe through and counts what
// the subscriber did: resets (after the Manager's onReset, so its cache is
// flushed), each signalled on reset, and change ids, after the Manager's
// onChange (dropped when 1024 are waiting).
type countingInvalidator struct {
	apikeys.Invalidator
	resets  atomic.Int64
	reset   chan struct{} // a token per reset, dropped when one is pending
	changes chan uuid.UUID
}

func newCountingInvalidator(inv apikeys.Invalidator) *countingInvalidator {
	return &countingInvalidator{Invalidator: inv, reset: make(chan struct{}, 1), changes: make(chan uuid.UUID, 1024)}
}

func (c *countingInvalidator) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	return c.Invalidator.Subscribe(ctx, func(id uuid.UUID) {
		onChange(id)
		select {
		case c.changes <- id:
		default: // nobody is waiting for it
		}
	}, func() {
		onReset()
		c.resets.Add(1)
		select {
		case c.reset <- struct{}{}:
		default:
		}
	})
}

// waitResets waits until more than n resets have been counted, for at most
// the deadline, and fails with what.
func (c *countingInvalidator) waitResets(t *testing.T, n int64, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for c.resets.Load() <= n {
		select {
		case <-c.reset:
		case <-deadline:
			t.Fatalf("%s: no reset within 10s (resets: %d)", what, c.resets.Load())
		}
	}
}

// logCapture is a slog.Handler that keeps the records of level Info and
// above.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
	added   chan struct{} // a token per record, dropped when one is pending
}

func newLogCapture() *logCapture { return &logCapture{added: make(chan struct{}, 1)} }

func (h *logCapture) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	select {
	case h.added <- struct{}{}:
	default:
	}
	return nil
}

func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

// text renders r as "LEVEL message key=value ...".
func text(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	return b.String()
}

// waitFor waits until a record from the from'th on has level and a text
// containing want, for at most 10s, and returns its index.
func (h *logCapture) waitFor(t *testing.T, from int, level slog.Level, want string) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		for i := from; i < len(h.records); i++ {
			if r := h.records[i]; r.Level == level && strings.Contains(text(r), want) {
				h.mu.Unlock()
				return i
			}
		}
		n := len(h.records)
		h.mu.Unlock()
		select {
		case <-h.added:
		case <-deadline:
			t.Fatalf("no %v log record containing %q within 10s (%d records from #%d on)", level, want, n-from, from)
		}
	}
}

func (h *logCapture) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.records)
}

// watchedPair returns Manager A, which keeps records through records and
// publishes through publish, and Manager B, whose cache (TTL an hour)
// reads records through readsB (counted) and subscribes through subscribe
// with a 100 ms PingInterval, its resets counted and its log captured (and
// shown when t ends). It waits for B's first subscription.
func watchedPair(t *testing.T, ns string, records, publish, recordsB, subscribe redis.UniversalClient) (a, b *apikeys.Manager, pub *Store, readsB *readCountingStore, inv *countingInvalidator, logs *logCapture) {
	t.Helper()
	storeA, err := New(records, &Config{Namespace: ns})
	require.NoError(t, err)
	pubA, err := New(publish, &Config{Namespace: ns})
	require.NoError(t, err)
	storeB, err := New(recordsB, &Config{Namespace: ns})
	require.NoError(t, err)
	logs = newLogCapture()
	subB, err := New(subscribe, &Config{Namespace: ns, PingInterval: 100 * time.Millisecond, Logger: slog.New(logs)})
	require.NoError(t, err)
	a, err = apikeys.New(storeA, &apikeys.Config{Invalidator: pubA, LastUsedInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close(context.Background())) })
	readsB, inv = &readCountingStore{Store: storeB}, newCountingInvalidator(subB)
	b, err = apikeys.New(readsB, &apikeys.Config{
		Cache:            &apikeys.CacheConfig{TTL: time.Hour, NegativeTTL: time.Hour},
		Invalidator:      inv,
		LastUsedInterval: -1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close(context.Background())) })
	t.Cleanup(func() {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, r := range logs.records {
			t.Logf("log: %s", text(r))
		}
	})
	inv.waitResets(t, 0, "B's first subscription")
	return a, b, pubA, readsB, inv, logs
}

// TestSubscriptionLiveness (issue 11, item 3): a subscription whose
// connection is held open but forwards nothing (a blackhole: the fault
// proxy holds every chunk for a minute) is found dead by its unanswered
// PING. Subscribe calls onReset, so that the subscribing Manager flushes
// its cache and refuses a key deleted in the meantime, logs the loss and
// subscribes again: once the fault is lifted, revocations published by
// another Manager arrive again.
//
// Plain clients only: a cluster client connects to the nodes that CLUSTER
// SLOTS names, past the proxy.
func TestSubscriptionLiveness(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{backends[0], backends[2]} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			rdb, ns, _ := b.open(t)
			direct := rdb.(*redis.Client).Options()
			proxy, err := faultproxy.Start(direct.Addr)
			require.NoError(t, err)
			t.Cleanup(func() { _ = proxy.Close() })
			viaProxy := redis.NewClient(&redis.Options{
				Addr: proxy.Addr(), DB: direct.DB, Username: direct.Username, Password: direct.Password,
				ContextTimeoutEnabled: true, // so that the store's bounds reach a blackholed handshake
			})
			t.Cleanup(func() { _ = viaProxy.Close() })

			// A publishes and reads directly; B reads directly too (so its
			// Authorize works during the fault) and subscribes through the
			// proxy.
			a, bm, pub, readsB, inv, logs := watchedPair(t, ns, rdb, rdb, rdb, viaProxy)

			// cached has B authorize nk twice and checks that the second
			// answer came from B's cache.
			cached := func(nk apikeys.NewKey) {
				t.Helper()
				_, err := bm.Authorize(t.Context(), nk.Value, apikeys.Request{})
				require.NoError(t, err)
				reads := readsB.gets.Load()
				_, err = bm.Authorize(t.Context(), nk.Value, apikeys.Request{})
				require.NoError(t, err)
				require.Equal(t, reads, readsB.gets.Load(), "B answers from its cache")
			}
			create := func() apikeys.NewKey {
				t.Helper()
				nk, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
				require.NoError(t, err)
				return nk
			}
			k1 := create()
			cached(k1)

			// The blackhole: B's subscription connection stays open and
			// carries nothing. The deletion's notification is lost in it.
			resets, logged := inv.resets.Load(), logs.len()
			proxy.Delay(time.Minute)
			_, err = a.Delete(t.Context(), "u", k1.ID)
			require.NoError(t, err)
			inv.waitResets(t, resets, "the subscription was blackholed: a dead subscription went unnoticed")
			logs.waitFor(t, logged, slog.LevelWarn, "subscription lost") // errSilent, or errDeaf if a heartbeat was in flight
			_, err = bm.Authorize(t.Context(), k1.Value, apikeys.Request{})
			require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B still accepts a key deleted while its subscription was dead")

			// The fault lifted, B subscribes again by itself: a change
			// published by A arrives (probes until it does, since B may
			// still be between attempts), and then a deletion does.
			logged = logs.len()
			proxy.Delay(0)
			probe := uuid.Must(uuid.NewV7())
			deadline := time.Now().Add(30 * time.Second)
			for got := false; !got; {
				require.True(t, time.Now().Before(deadline), "B's subscription did not come back within 30s of lifting the fault")
				require.NoError(t, pub.Publish(t.Context(), probe))
				select {
				case id := <-inv.changes:
					got = id == probe
				case <-time.After(100 * time.Millisecond):
				}
			}
			logs.waitFor(t, logged, slog.LevelInfo, "restored")

			k2 := create()
			cached(k2)
			reads := readsB.gets.Load()
			_, err = a.Delete(t.Context(), "u", k2.ID)
			require.NoError(t, err)
			for got := uuid.Nil; got != k2.ID; {
				got = waitFor(t, inv.changes, "the deletion of k2 to reach B after the fault")
			}
			_, err = bm.Authorize(t.Context(), k2.Value, apikeys.Request{})
			require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B still accepts k2, deleted after the fault")
			require.Greater(t, readsB.gets.Load(), reads, "B refused k2 without reading the store")
		})
	}
}

// TestNewPingInterval: the default, a setting, and a negative interval,
// which is an error.
func TestNewPingInterval(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{}) // never used
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultPingInterval, s.pingInterval)
	require.NotNil(t, s.log)
	l := slog.New(newLogCapture())
	s, err = New(rdb, &Config{PingInterval: time.Second, Logger: l})
	require.NoError(t, err)
	require.Equal(t, time.Second, s.pingInterval)
	require.Same(t, l, s.log)
	_, err = New(rdb, &Config{PingInterval: -time.Second})
	require.Error(t, err)
}

// movingClient models a failover as a failover client lives it: commands
// (Publish included) and new subscriptions go to the current server, while
// a subscription made before the move stays on the server it was made on.
type movingClient struct {
	redis.UniversalClient // the first server, for everything else
	cur                   atomic.Pointer[redis.Client]
}

func (c *movingClient) Publish(ctx context.Context, channel string, message any) *redis.IntCmd {
	return c.cur.Load().Publish(ctx, channel, message)
}

func (c *movingClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.cur.Load().Subscribe(ctx, channels...)
}

// TestSubscriptionFollowsPublishers: a subscription that still answers
// PING but is on a server the publishers have left (a demoted master after
// a Sentinel failover, until Sentinel reconfigures it) hears nothing. The
// heartbeats Subscribe publishes through the client do not come back, so
// it resets, logs and subscribes again, where the client now goes: a
// revocation published on the new server then arrives.
func TestSubscriptionFollowsPublishers(t *testing.T) {
	t.Parallel()
	rdbX, ns, _ := openMiniredis(t)
	rdbY, _, _ := openMiniredis(t)
	moving := &movingClient{UniversalClient: rdbX}
	moving.cur.Store(rdbX.(*redis.Client))

	// Records stay on X; changes are published, and subscribed to, through
	// the moving client.
	a, bm, pub, readsB, inv, logs := watchedPair(t, ns, rdbX, moving, rdbX, moving)
	var err error

	create := func() apikeys.NewKey {
		t.Helper()
		nk, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
		require.NoError(t, err)
		for range 2 { // the second from B's cache
			_, err = bm.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err)
		}
		return nk
	}
	k1 := create()

	// The move: from now on A publishes on Y, and B's subscription is
	// still on X, which answers its PINGs.
	resets, logged := inv.resets.Load(), logs.len()
	moving.cur.Store(rdbY.(*redis.Client))
	_, err = a.Delete(t.Context(), "u", k1.ID)
	require.NoError(t, err)
	inv.waitResets(t, resets, "B's subscription stayed where the publishers left, and went unnoticed")
	logs.waitFor(t, logged, slog.LevelWarn, errDeaf.Error())
	_, err = bm.Authorize(t.Context(), k1.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B still accepts a key deleted while it listened on the old server")

	// B subscribes again, on Y: changes published there arrive.
	probe := uuid.Must(uuid.NewV7())
	deadline := time.Now().Add(30 * time.Second)
	for got := false; !got; {
		require.True(t, time.Now().Before(deadline), "B did not subscribe on the new server within 30s")
		require.NoError(t, pub.Publish(t.Context(), probe))
		select {
		case id := <-inv.changes:
			got = id == probe
		case <-time.After(100 * time.Millisecond):
		}
	}
	k2 := create()
	reads := readsB.gets.Load()
	_, err = a.Delete(t.Context(), "u", k2.ID)
	require.NoError(t, err)
	for got := uuid.Nil; got != k2.ID; {
		got = waitFor(t, inv.changes, "the deletion of k2 to reach B on the new server")
	}
	_, err = bm.Authorize(t.Context(), k2.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B still accepts k2, deleted after the move")
	require.Greater(t, readsB.gets.Load(), reads, "B refused k2 without reading the store")
}

// TestSubscriptionHeartbeatRefused: with an ACL that allows only the
// changes channel, Redis refuses the heartbeat channel; the subscription
// then goes on with PING alone, says so once, and delivers changes.
//
// It needs a real Redis whose ACL it may change: the Sentinel topology's
// master (scripts/redis-topologies.sh), where it adds a user for the test.
func TestSubscriptionHeartbeatRefused(t *testing.T) {
	t.Parallel()
	opts := sentinelOptions(t)
	sc := redis.NewSentinelClient(&redis.Options{Addr: opts.SentinelAddrs[0]})
	t.Cleanup(func() { _ = sc.Close() })
	hp, err := sc.GetMasterAddrByName(t.Context(), opts.MasterName).Result()
	require.NoError(t, err)
	admin := redis.NewClient(&redis.Options{Addr: strings.Join(hp, ":")})
	t.Cleanup(func() { _ = admin.Close() })
	ns := randomNamespace(t)
	user, password := strings.TrimSuffix(ns, ":"), uuid.NewString()
	require.NoError(t, admin.Do(t.Context(), "acl", "setuser", user, "on", ">"+password,
		"~*", "resetchannels", "&"+ns+"changes", "+@all").Err())
	t.Cleanup(func() { _ = admin.Do(context.Background(), "acl", "deluser", user).Err() })
	t.Cleanup(func() { deleteNamespace(t, admin, ns) })
	limited := redis.NewClient(&redis.Options{Addr: strings.Join(hp, ":"), Username: user, Password: password})
	t.Cleanup(func() { _ = limited.Close() })
	require.Error(t, limited.Publish(t.Context(), ns+"changes:heartbeat:x", "1").Err(), "the ACL allows the heartbeat channel")

	storeA, err := New(admin, &Config{Namespace: ns})
	require.NoError(t, err)
	logs := newLogCapture()
	storeB, err := New(limited, &Config{Namespace: ns, PingInterval: 100 * time.Millisecond, Logger: slog.New(logs)})
	require.NoError(t, err)
	inv := newCountingInvalidator(storeB)
	bm, err := apikeys.New(storeB, &apikeys.Config{
		Cache: &apikeys.CacheConfig{TTL: time.Hour}, Invalidator: inv, LastUsedInterval: -1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bm.Close(context.Background())) })
	t.Cleanup(func() {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, r := range logs.records {
			t.Logf("log: %s", text(r))
		}
	})
	logs.waitFor(t, 0, slog.LevelWarn, "heartbeats are off")

	probe := uuid.Must(uuid.NewV7())
	deadline := time.Now().Add(30 * time.Second)
	for got := false; !got; {
		require.True(t, time.Now().Before(deadline), "no change delivered after heartbeats were turned off")
		require.NoError(t, storeA.Publish(t.Context(), probe))
		select {
		case id := <-inv.changes:
			got = id == probe
		case <-time.After(100 * time.Millisecond):
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, r := range logs.records {
		require.NotContains(t, text(r), "subscription lost", "the subscription failed")
	}
}
