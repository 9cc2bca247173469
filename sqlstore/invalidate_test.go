package sqlstore_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
	"github.com/keyward/apikeys/sqlstore"
)

// eventWait bounds every wait for a notification or a reset. It is a
// guard against a hang, not a latency goal: the events come in
// milliseconds (PostgreSQL), a poll interval (MySQL, SQLite) or a few
// liveness timeouts (faults).
const eventWait = 30 * time.Second

// probe wraps an Invalidator and records what its subscription delivers,
// after passing each call on to the subscriber (the Manager), so that once
// the probe has seen an event, the Manager has acted on it. It never
// blocks the subscription.
type probe struct {
	apikeys.Invalidator

	mu     sync.Mutex
	seen   map[uuid.UUID]bool
	resets int
	kick   chan struct{} // one slot: "something happened"
	ended  chan error    // what Subscribe returned
}

func newProbe(inv apikeys.Invalidator) *probe {
	return &probe{Invalidator: inv, seen: map[uuid.UUID]bool{}, kick: make(chan struct{}, 1), ended: make(chan error, 1)}
}

func (p *probe) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	err := p.Invalidator.Subscribe(ctx,
		func(id uuid.UUID) {
			onChange(id)
			p.note(func() { p.seen[id] = true })
		},
		func() {
			onReset()
			p.note(func() { p.resets++ })
		})
	p.ended <- err
	return err
}

func (p *probe) note(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *probe) resetCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets
}

func (p *probe) saw(id uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id]
}

// waitFor waits until cond holds, checking it after each event, and fails
// t after eventWait.
func (p *probe) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-p.kick:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitListening returns once the subscription delivers what pub publishes:
// it publishes a fresh id and waits for it or for a reset, and then again
// after a reset. A published id is lost only when the subscription is not
// (or no longer) up, and then a reset follows (the one that reports it
// up again), so the loop ends; the count bounds it anyway.
func (p *probe) waitListening(t *testing.T, pub apikeys.Invalidator) {
	t.Helper()
	for range 50 {
		id := uuid.Must(uuid.NewV7())
		r := p.resetCount()
		require.NoError(t, pub.Publish(ctx(t), id))
		p.waitFor(t, "a probe or a reset", func() bool { return p.saw(id) || p.resetCount() > r })
		if p.saw(id) {
			return
		}
	}
	t.Fatal("the subscription never delivered a probe")
}

// subscribe runs the store's Subscribe under a probe until t ends, and
// checks that it then returns nil.
func subscribe(t *testing.T, s *sqlstore.Store) *probe {
	t.Helper()
	p := newProbe(s)
	c, cancel := context.WithCancel(context.Background())
	go func() { _ = p.Subscribe(c, func(uuid.UUID) {}, func() {}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-p.ended:
			require.NoError(t, err, "Subscribe after ctx was done")
		case <-time.After(eventWait):
			t.Error("Subscribe did not return after ctx was done")
		}
	})
	return p
}

// cachingManager is a Manager with a one-hour cache on s, subscribed
// through a probe around inv, closed when t ends.
func cachingManager(t *testing.T, s apikeys.Store, inv apikeys.Invalidator) (*apikeys.Manager, *probe) {
	t.Helper()
	p := newProbe(inv)
	m, err := apikeys.New(s, &apikeys.Config{Cache: &apikeys.CacheConfig{TTL: time.Hour}, Invalidator: p, LastUsedInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, m.Close(context.Background()))
		require.NoError(t, <-p.ended, "Subscribe after Close")
	})
	return m, p
}

// storeOn returns a Store on table (migrated by the caller) with cfg.
func storeOn(t *testing.T, db *sqlx.DB, table string, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	cfg.Table = table
	s, err := sqlstore.New(db, &cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// secondPool opens another pool on db's database, as another process
// would: a separate SQLite connection to the same file, or a separate
// pool on the server.
func secondPool(t *testing.T, db testDB) *sqlx.DB {
	t.Helper()
	return openPool(t, db.driver, db.dsnText)
}

var webKey = apikeys.CreateParams{
	Type: apikeys.Public, Name: "inv", UserID: "inv-user",
	AllowedOrigins: []string{"https://app.example.com"},
}

var webRequest = apikeys.Request{Origin: "https://app.example.com"}

// cacheIn creates a key through a and has m cache it.
func cacheIn(t *testing.T, a, m *apikeys.Manager) apikeys.NewKey {
	t.Helper()
	nk, err := a.Create(ctx(t), webKey)
	require.NoError(t, err)
	_, err = m.Authorize(ctx(t), nk.Value, webRequest)
	require.NoError(t, err)
	return nk
}

// TestInvalidatorRevocation: two Managers with one-hour caches on one
// table, each with the store as Invalidator. A key deleted through A is
// refused by B, which had it cached, once B's subscription delivers the
// change; a key B narrows is narrowed in A.
func TestInvalidatorRevocation(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		// Mixed case: the PostgreSQL channel is quoted as written.
		table := "Inv_" + randomTable(t)
		sa := newStore(t, db.DB, table)
		require.NoError(t, sa.Migrate(ctx(t)))
		sb := storeOn(t, secondPool(t, db), table, sqlstore.Config{PollInterval: 20 * time.Millisecond})
		a, pa := cachingManager(t, sa, sa)
		b, pb := cachingManager(t, sb, sb)
		pa.waitListening(t, sb)
		pb.waitListening(t, sa)

		for range 5 {
			nk := cacheIn(t, a, b)
			_, err := a.Authorize(ctx(t), nk.Value, webRequest)
			require.NoError(t, err)
			_, err = a.Delete(ctx(t), nk.UserID, nk.ID)
			require.NoError(t, err)
			pb.waitFor(t, "B to hear of the delete", func() bool { return pb.saw(nk.ID) })
			_, err = b.Authorize(ctx(t), nk.Value, webRequest)
			require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B accepts a key deleted through A")
			_, err = a.Authorize(ctx(t), nk.Value, webRequest)
			require.ErrorIs(t, err, apikeys.ErrInvalidKey)
		}

		nk := cacheIn(t, b, a)
		other := []string{"https://other.example.com"}
		_, err := b.Update(ctx(t), nk.UserID, nk.ID, apikeys.UpdateParams{AllowedOrigins: &other})
		require.NoError(t, err)
		pa.waitFor(t, "A to hear of the update", func() bool { return pa.saw(nk.ID) })
		_, err = a.Authorize(ctx(t), nk.Value, webRequest)
		require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed, "A still has the key's old origins")
	})
}

// TestSubscribeEndsWithContext: Subscribe returns nil once ctx is done,
// also while it cannot reach the database.
func TestSubscribeEndsWithContext(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		p := subscribe(t, s)
		p.waitListening(t, s)
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ driver, dsn string }{
			{"pgx", "postgres://nobody@" + faultproxy.SilentAddr(t) + "/nothing?sslmode=disable"},
			{"mysql", "nobody@tcp(" + faultproxy.SilentAddr(t) + ")/nothing"},
		} {
			s := storeOn(t, openPool(t, tc.driver, tc.dsn), "api_keys", sqlstore.Config{LivenessTimeout: 50 * time.Millisecond})
			p := subscribe(t, s)
			p.waitFor(t, "resets while the database does not answer", func() bool { return p.resetCount() >= 2 })
		}
	})
}

// TestSubscribeNeedsPgx: on PostgreSQL through a driver other than pgx,
// Subscribe cannot LISTEN and says so at once (the Manager then falls back
// to its TTL), while Publish is plain SQL.
func TestSubscribeNeedsPgx(t *testing.T) {
	t.Parallel()
	// Any non-pgx connection will do: SQLite's, under the name "postgres".
	raw := openPool(t, "sqlite", sqliteDSN(filepath.Join(t.TempDir(), "pq.db")))
	s := storeOn(t, sqlx.NewDb(raw.DB, "postgres"), "api_keys", sqlstore.Config{})
	require.Equal(t, sqlstore.Postgres, s.Dialect())
	err := s.Subscribe(ctx(t), func(uuid.UUID) {}, func() {})
	require.ErrorContains(t, err, "pgx driver")
}

// TestNotifyChannels: on PostgreSQL the channel follows the table name,
// case and all, up to the longest table name.
func TestNotifyChannels(t *testing.T) {
	t.Parallel()
	db := targets[1].open(t)
	suffix := strings.TrimPrefix(randomTable(t), "apikeys_test_")
	for _, table := range []string{
		"Keys_" + suffix,
		"keys_" + suffix,
		"k_" + suffix + strings.Repeat("x", sqlstore.MaxTableLen-2-len(suffix)),
	} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, db.DB, table)
			require.NoError(t, s.Migrate(ctx(t)))
			p := subscribe(t, s)
			p.waitListening(t, s)
		})
	}
}

// faulty is a database reached directly and through a fault proxy.
type faulty struct {
	name   string // the fault
	inject func(px *faultproxy.Proxy)
	heal   func(t *testing.T, px *faultproxy.Proxy)
}

var faults = map[sqlstore.Dialect][]faulty{
	sqlstore.Postgres: {
		// The listening connection drops.
		{"cut", (*faultproxy.Proxy).Cut, func(*testing.T, *faultproxy.Proxy) {}},
		{"down", (*faultproxy.Proxy).Down, func(t *testing.T, px *faultproxy.Proxy) { require.NoError(t, px.Up()) }},
		blackhole,
	},
	sqlstore.MySQL: {
		// A cut alone fails nothing here: database/sql replaces a pooled
		// connection found closed, and the log loses nothing meanwhile.
		{"down", (*faultproxy.Proxy).Down, func(t *testing.T, px *faultproxy.Proxy) { require.NoError(t, px.Up()) }},
		blackhole,
	},
}

// blackhole: the server stops answering and nothing says so.
var blackhole = faulty{"blackhole",
	func(px *faultproxy.Proxy) { px.Delay(time.Hour) },
	func(_ *testing.T, px *faultproxy.Proxy) {
		px.Delay(0)
		px.Cut() // the held connections stay held: end them
	},
}

// proxied returns the DSN of db's server through px.
func proxied(t *testing.T, db testDB, px *faultproxy.Proxy) string {
	t.Helper()
	switch db.dialect {
	case sqlstore.Postgres:
		u, err := url.Parse(db.dsnText)
		require.NoError(t, err)
		u.Host = px.Addr()
		return u.String()
	default:
		cfg, err := mysql.ParseDSN(db.dsnText)
		require.NoError(t, err)
		cfg.Addr = px.Addr()
		return cfg.FormatDSN()
	}
}

// serverAddr is the host:port of db's server.
func serverAddr(t *testing.T, db testDB) string {
	t.Helper()
	if db.dialect == sqlstore.Postgres {
		u, err := url.Parse(db.dsnText)
		require.NoError(t, err)
		return u.Host
	}
	cfg, err := mysql.ParseDSN(db.dsnText)
	require.NoError(t, err)
	return cfg.Addr
}

// TestInvalidatorFailureResets: when the notification channel fails (its
// connection is cut, the server goes away, or stops answering), the
// subscriber's Manager flushes its cache, and once the channel is back,
// revocations arrive again. Only the subscription goes through the fault
// proxy: the Managers read and write directly, so a flushed cache shows as
// a fresh read.
func TestInvalidatorFailureResets(t *testing.T) {
	t.Parallel()
	for _, tg := range targets[1:] {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			for _, f := range faults[tg.dialect] {
				t.Run(f.name, func(t *testing.T) {
					t.Parallel()
					testFailureResets(t, db, f)
				})
			}
		})
	}
}

func testFailureResets(t *testing.T, db testDB, f faulty) {
	px, err := faultproxy.Start(serverAddr(t, db))
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	sa := migratedStore(t, db.DB)
	// The subscriber's store: through the proxy, noticing silence within
	// two seconds (the default is five).
	sp := storeOn(t, openPool(t, db.driver, proxied(t, db, px)), sa.Table(),
		sqlstore.Config{PollInterval: 20 * time.Millisecond, LivenessTimeout: time.Second})
	a, err := apikeys.New(sa, &apikeys.Config{Invalidator: sa, LastUsedInterval: -1})
	require.NoError(t, err)
	b, pb := cachingManager(t, sa, sp)
	pb.waitListening(t, sa)

	// A key that B has cached, deleted behind its back (no Publish): B
	// keeps accepting it from its cache. Unless a reset came in between
	// (a slow machine can miss a liveness deadline): then again.
	var stale apikeys.NewKey
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 5, "resets kept flushing B's cache")
		r := pb.resetCount()
		stale = cacheIn(t, a, b)
		require.NoError(t, sa.Delete(ctx(t), stale.UserID, stale.ID))
		_, err := b.Authorize(ctx(t), stale.Value, webRequest)
		if err == nil {
			break
		}
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
		require.Greater(t, pb.resetCount(), r, "B refused a cached key without a reset")
	}

	r := pb.resetCount()
	f.inject(px)
	pb.waitFor(t, "a reset after the failure", func() bool { return pb.resetCount() > r })
	_, err = b.Authorize(ctx(t), stale.Value, webRequest)
	require.ErrorIs(t, err, apikeys.ErrInvalidKey, "B's cache was not flushed on the reset")

	f.heal(t, px)
	pb.waitListening(t, sa)
	revokeSeen(t, a, b, pb)
}

// revokeSeen deletes a key that b has cached through a and checks that b's
// subscription delivers the change and b refuses the key. A reset in
// between (a slow machine) flushes b's cache and may lose the change: then
// it tries again, a bounded number of times.
func revokeSeen(t *testing.T, a, b *apikeys.Manager, pb *probe) {
	t.Helper()
	for range 5 {
		r := pb.resetCount()
		nk := cacheIn(t, a, b)
		_, err := a.Delete(ctx(t), nk.UserID, nk.ID)
		require.NoError(t, err)
		pb.waitFor(t, "the delete or a reset", func() bool { return pb.saw(nk.ID) || pb.resetCount() > r })
		_, err = b.Authorize(ctx(t), nk.Value, webRequest)
		require.ErrorIs(t, err, apikeys.ErrInvalidKey)
		if pb.saw(nk.ID) {
			return
		}
	}
	t.Fatal("no revocation delivered")
}

// changeLog is a store's change-log table, for the tests that look into it.
type changeLog struct {
	db    testDB
	table string // quoted
}

func changeLogOf(db testDB, s *sqlstore.Store) changeLog {
	return changeLog{db, quote(db.dialect, s.Table()+"_changes")}
}

func (cl changeLog) count(t *testing.T) (n int, minSeq, maxSeq int64) {
	t.Helper()
	var lo, hi *int64
	require.NoError(t, cl.db.QueryRowxContext(ctx(t), "SELECT COUNT(*), MIN(seq), MAX(seq) FROM "+cl.table).Scan(&n, &lo, &hi))
	if n > 0 {
		minSeq, maxSeq = *lo, *hi
	}
	return n, minSeq, maxSeq
}

// insertOld adds n rows created two retention periods ago.
func (cl changeLog) insertOld(t *testing.T, n int) {
	t.Helper()
	age := 2 * sqlstore.ChangeRetention
	for n > 0 {
		chunk := min(n, 200)
		var q strings.Builder
		q.WriteString("INSERT INTO " + cl.table + " (key_id, created_at) VALUES ")
		args := make([]any, 0, chunk)
		for i := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			if cl.db.dialect == sqlstore.MySQL {
				q.WriteString("(?, UTC_TIMESTAMP(6) - INTERVAL " + itoa(int64(age/time.Second)) + " SECOND)")
			} else {
				q.WriteString("(?, " + itoa(time.Now().Add(-age).UnixMicro()) + ")")
			}
			args = append(args, uuid.Must(uuid.NewV7()).String())
		}
		_, err := cl.db.ExecContext(ctx(t), q.String(), args...)
		require.NoError(t, err)
		n -= chunk
	}
}

// insertAt adds a row with the given seq, as a row committed late would
// appear.
func (cl changeLog) insertAt(t *testing.T, seq int64, id uuid.UUID) {
	t.Helper()
	now := "UTC_TIMESTAMP(6)"
	if cl.db.dialect == sqlstore.SQLite {
		now = itoa(time.Now().UnixMicro())
	}
	_, err := cl.db.ExecContext(ctx(t), "INSERT INTO "+cl.table+" (seq, key_id, created_at) VALUES (?, ?, "+now+")", seq, id.String())
	require.NoError(t, err)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// changeLogTargets runs fn on the dialects with a change log.
func changeLogTargets(t *testing.T, fn func(t *testing.T, db testDB)) {
	t.Helper()
	forEach(t, func(t *testing.T, db testDB) {
		if db.dialect == sqlstore.Postgres {
			t.Skip("PostgreSQL uses LISTEN/NOTIFY, not a change log")
		}
		fn(t, db)
	})
}

// TestChangeLogPruned: rows past retention are deleted, in batches,
// except the newest row, which is kept whatever its age; recent rows stay.
func TestChangeLogPruned(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		cl := changeLogOf(db, s)
		old := 2*sqlstore.PruneBatch + 7
		cl.insertOld(t, old)
		recent := []uuid.UUID{apikeysID(t), apikeysID(t), apikeysID(t)}
		for _, id := range recent {
			require.NoError(t, s.Publish(ctx(t), id))
		}
		n, _, hi := cl.count(t)
		require.Equal(t, old+len(recent), n)

		require.NoError(t, s.PruneChanges(ctx(t)))
		n, lo, hi2 := cl.count(t)
		require.Equal(t, len(recent), n, "rows left after pruning")
		require.Equal(t, hi, hi2)
		require.Equal(t, hi-2, lo)

		// Only old rows: the newest stays, so the sequence cannot restart.
		s2 := migratedStore(t, db.DB)
		cl2 := changeLogOf(db, s2)
		cl2.insertOld(t, 3)
		_, _, hi = cl2.count(t)
		require.NoError(t, s2.PruneChanges(ctx(t)))
		n, lo, hi2 = cl2.count(t)
		require.Equal(t, 1, n)
		require.Equal(t, hi, lo)
		require.Equal(t, hi, hi2)
	})
}

// TestSubscribePrunes: a subscriber prunes the change log by itself.
func TestSubscribePrunes(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		table := randomTable(t)
		s := newStore(t, db.DB, table)
		require.NoError(t, s.Migrate(ctx(t)))
		cl := changeLogOf(db, s)
		cl.insertOld(t, 50)
		_, _, oldTop := cl.count(t)
		require.NoError(t, s.Publish(ctx(t), apikeysID(t))) // newer than the old rows: they can all go
		sp := storeOn(t, db.DB, table, sqlstore.Config{PollInterval: 10 * time.Millisecond})
		p := subscribe(t, sp)
		// Subscribe prunes right after its first successful read, and reads
		// again only after that: once a second probe is delivered, the
		// first round is done.
		p.waitListening(t, s)
		p.waitListening(t, s)
		_, lo, _ := cl.count(t)
		require.Greater(t, lo, oldTop, "old rows left")
	})
}

// TestChangeLogGap: a row that commits after a later one was read (an
// AUTO_INCREMENT value taken before, committed after) is still delivered.
func TestChangeLogGap(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		sp := storeOn(t, db.DB, s.Table(), sqlstore.Config{PollInterval: 10 * time.Millisecond})
		p := subscribe(t, sp)
		p.waitListening(t, s)
		cl := changeLogOf(db, s)
		_, _, hi := cl.count(t)
		late, early := apikeysID(t), apikeysID(t)
		cl.insertAt(t, hi+3, early)
		p.waitFor(t, "the row above the gap", func() bool { return p.saw(early) })
		cl.insertAt(t, hi+1, late)
		p.waitFor(t, "the row in the gap", func() bool { return p.saw(late) })
		// Publish goes on above the highest seq.
		p.waitListening(t, s)
	})
}

// TestChangeLogRewound: a change log emptied under a subscriber, with its
// sequence restarted (an operator's TRUNCATE), is noticed when the
// subscriber prunes: it resets and reads from the new end, where it would
// otherwise wait for seqs above the old end for good.
func TestChangeLogRewound(t *testing.T) {
	t.Parallel()
	changeLogTargets(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		for range 3 {
			require.NoError(t, s.Publish(ctx(t), apikeysID(t)))
		}
		sp := storeOn(t, db.DB, s.Table(), sqlstore.Config{PollInterval: 10 * time.Millisecond})
		sp.SetPruneEvery(0) // on every read
		p := subscribe(t, sp)
		p.waitListening(t, s)
		cl := changeLogOf(db, s)
		r := p.resetCount()
		if db.dialect == sqlstore.MySQL {
			_, err := db.ExecContext(ctx(t), "TRUNCATE TABLE "+cl.table) // restarts AUTO_INCREMENT
			require.NoError(t, err)
		} else {
			_, err := db.ExecContext(ctx(t), "DELETE FROM "+cl.table)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx(t), "DELETE FROM sqlite_sequence WHERE name = ?", s.Table()+"_changes")
			require.NoError(t, err)
		}
		p.waitFor(t, "a reset after the log was rewound", func() bool { return p.resetCount() > r })
		p.waitListening(t, s)
	})
}

func TestNewInvalidationConfig(t *testing.T) {
	t.Parallel()
	raw := openPool(t, "sqlite", sqliteDSN(filepath.Join(t.TempDir(), "cfg.db")))
	for _, cfg := range []sqlstore.Config{{PollInterval: -1}, {LivenessTimeout: -time.Second}} {
		_, err := sqlstore.New(raw, &cfg)
		require.ErrorContains(t, err, "must not be negative")
	}
}
