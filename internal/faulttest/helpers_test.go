package faulttest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
	"github.com/keyward/apikeys/redisstore"
	"github.com/keyward/apikeys/sqlstore"
)

const (
	// envFaults turns the fault tests on: they take tens of seconds, so a
	// plain go test ./... skips them; .ci/run sets APIKEYS_FAULTS=1.
	envFaults = "APIKEYS_FAULTS"

	envRedis    = "APIKEYS_TEST_REDIS_URL"
	envPostgres = "APIKEYS_TEST_POSTGRES_DSN"
	envMySQL    = "APIKEYS_TEST_MYSQL_DSN"

	// callDeadline is the deadline of the context every Manager call gets.
	// Calls that must succeed get it too, so it is generous: a loaded CI
	// machine running the soak beside these tests must not fail them.
	callDeadline = 4 * time.Second
	// opTimeout is the Managers' Config.OpTimeout, generous for the same
	// reason; it ends every call to a hung server long before hang.
	opTimeout = 2 * time.Second
	// recoverWithin bounds how long a store may take to work again after
	// the fault is lifted.
	recoverWithin = 10 * time.Second
	// hang is the proxy delay that makes a server look hung.
	hang = time.Minute
)

// discard is the ErrorLog of Managers and middleware: the failures they
// log are what these tests provoke.
var discard = slog.New(slog.DiscardHandler)

// fixture is one real store behind a fault proxy.
type fixture struct {
	name  string
	proxy *faultproxy.Proxy
	store apikeys.Store
	// records returns the id of every record the store holds, read
	// through a direct connection that bypasses the proxy.
	records func(ctx context.Context) ([]uuid.UUID, error)
	// settle cuts every proxied connection and waits until the server has
	// finished with them, so that no write delayed in the proxy or the
	// server's socket buffers lands afterwards.
	settle func(ctx context.Context) error
}

// pollCtx is poll until ctx is done.
func pollCtx(ctx context.Context, cond func() error) error {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(recoverWithin)
	}
	_, err := poll(time.Until(dl), cond)
	return err
}

type storeKind struct {
	name string
	open func(t *testing.T) *fixture
}

var kinds = []storeKind{
	{"redis", openRedis},
	{"postgres", openPostgres},
	{"mysql", openMySQL},
}

// forEachStore runs fn as a parallel subtest per real store, skipping the
// stores whose server is not configured.
func forEachStore(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	requireFaults(t)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			fn(t, k.open(t))
		})
	}
}

// requireFaults skips t unless envFaults is true.
func requireFaults(t *testing.T) {
	t.Helper()
	v := os.Getenv(envFaults)
	on, err := strconv.ParseBool(v)
	if v != "" && err != nil {
		t.Fatalf("%s=%q: want 1 or 0", envFaults, v)
	}
	if !on {
		t.Skipf("the fault tests are opt-in: set %s=1 (and the APIKEYS_TEST_* variables of the servers) to run them", envFaults)
	}
}

// requireLoopback skips t unless hostport is on a loopback address: the
// tests cut and delay traffic and must never do so to a remote machine.
func requireLoopback(t *testing.T, env, hostport string) {
	t.Helper()
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		t.Skipf("%s names %q, which is not a loopback address; the fault tests only run against local servers", env, hostport)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// openRedis: redisstore on a go-redis client pointed at the proxy, in a
// fresh namespace that a direct client deletes at the end.
func openRedis(t *testing.T) *fixture {
	raw := os.Getenv(envRedis)
	if raw == "" {
		t.Skip(envRedis + " is not set; skipping the fault tests against a real Redis")
	}
	opts, err := redis.ParseURL(raw)
	require.NoError(t, err, envRedis)
	requireLoopback(t, envRedis, opts.Addr)
	target := opts.Addr

	direct := redis.NewClient(opts)
	t.Cleanup(func() { _ = direct.Close() })
	ctx, cancel := cleanupCtx()
	defer cancel()
	require.NoError(t, direct.Ping(ctx).Err(), "direct connection to %s", target)

	ns := "apikeys-faulttest-" + randomHex(t, 8) + ":"
	scan := func(ctx context.Context, match string) ([]string, error) {
		var keys []string
		iter := direct.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		keys, err := scan(ctx, ns+"*")
		if err != nil {
			t.Errorf("clean-up: SCAN %s*: %v", ns, err)
			return
		}
		if len(keys) > 0 {
			if err := direct.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("clean-up: DEL namespace %s: %v", ns, err)
			}
		}
	})

	p := startProxy(t, target)
	popts, err := redis.ParseURL(raw)
	require.NoError(t, err)
	popts.Addr = p.Addr()
	popts.ContextTimeoutEnabled = true
	popts.DialTimeout = 500 * time.Millisecond
	clientName := strings.TrimSuffix(ns, ":")
	popts.ClientName = clientName
	rdb := redis.NewClient(popts)
	t.Cleanup(func() { _ = rdb.Close() })
	t.Cleanup(func() { p.Delay(0); _ = p.Up() }) // first: let clean-up through

	s, err := redisstore.New(rdb, &redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	return &fixture{
		name:  "redis",
		proxy: p,
		store: s,
		records: func(ctx context.Context) ([]uuid.UUID, error) {
			keys, err := scan(ctx, ns+"k:{*}")
			if err != nil {
				return nil, err
			}
			ids := make([]uuid.UUID, 0, len(keys))
			for _, k := range keys {
				id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(k, ns+"k:{"), "}"))
				if err != nil {
					return nil, fmt.Errorf("record key %q: %w", k, err)
				}
				ids = append(ids, id)
			}
			return ids, nil
		},
		settle: func(ctx context.Context) error {
			p.Cut()
			return pollCtx(ctx, func() error {
				list, err := direct.ClientList(ctx).Result()
				if err != nil {
					return err
				}
				if strings.Contains(list, " name="+clientName+" ") {
					return errors.New("proxied connections still open on the server")
				}
				return nil
			})
		},
	}
}

// openPostgres: sqlstore on pgx, the DSN's host:port replaced by the
// proxy's.
func openPostgres(t *testing.T) *fixture {
	raw := os.Getenv(envPostgres)
	if raw == "" {
		t.Skip(envPostgres + " is not set; skipping the fault tests against a real PostgreSQL")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Skipf("%s must be a postgres:// URL with a host:port for the fault tests to reroute it", envPostgres)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	requireLoopback(t, envPostgres, target)
	appName := "apikeys_faulttest_" + randomHex(t, 6)
	// The proxied sessions are the ones with appName.
	busy := "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '" + appName + "'"
	proxied := func(addr string) string {
		pu := *u
		pu.Host = addr
		q := pu.Query()
		q.Set("connect_timeout", "2")
		q.Set("application_name", appName)
		pu.RawQuery = q.Encode()
		return pu.String()
	}
	return openSQL(t, "postgres", "pgx", raw, target, proxied, func(string) string { return busy })
}

// openMySQL: sqlstore on go-sql-driver/mysql, the DSN's tcp(host:port)
// replaced by the proxy's.
func openMySQL(t *testing.T) *fixture {
	raw := os.Getenv(envMySQL)
	if raw == "" {
		t.Skip(envMySQL + " is not set; skipping the fault tests against a real MySQL/MariaDB")
	}
	cfg, err := mysql.ParseDSN(raw)
	require.NoError(t, err, envMySQL)
	if cfg.Net != "tcp" {
		t.Skipf("%s must use tcp(host:port) for the fault tests to reroute it", envMySQL)
	}
	requireLoopback(t, envMySQL, cfg.Addr)
	proxied := func(addr string) string {
		c := cfg.Clone()
		c.Addr = addr
		c.Timeout = 2 * time.Second
		return c.FormatDSN()
	}
	// MySQL has no session name in PROCESSLIST without performance_schema:
	// wait for the statements on the test's table instead.
	busy := func(table string) string {
		return "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Sleep' AND INFO LIKE '%" + table + "%'"
	}
	return openSQL(t, "mysql", "mysql", raw, cfg.Addr, proxied, busy)
}

// openSQL opens the store; busy(table) is a query counting the server's
// sessions still working for the proxied pool.
func openSQL(t *testing.T, name, driver, dsn, target string, proxied, busy func(string) string) *fixture {
	t.Helper()
	direct, err := sqlx.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = direct.Close() })
	ctx, cancel := cleanupCtx()
	defer cancel()
	require.NoError(t, direct.PingContext(ctx), "direct connection to %s", target)

	table := "apikeys_faulttest_" + randomHex(t, 6)
	quote := func(s string) string { return `"` + s + `"` }
	if driver == "mysql" {
		quote = func(s string) string { return "`" + s + "`" }
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		for _, tbl := range []string{table, table + "_schema_versions", table + "_changes"} {
			if _, err := direct.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(tbl)); err != nil {
				t.Errorf("clean-up: drop %s: %v", tbl, err)
			}
		}
	})

	p := startProxy(t, target)
	db, err := sqlx.Open(driver, proxied(p.Addr()))
	require.NoError(t, err)
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlstore.New(db, &sqlstore.Config{Table: table})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("%s: closing the store's statements after the faults: %v", name, err)
		}
	})
	t.Cleanup(func() { p.Delay(0); _ = p.Up() }) // first: let clean-up through
	require.NoError(t, s.Migrate(ctx), "Migrate through the proxy")

	return &fixture{
		name:  name,
		proxy: p,
		store: s,
		records: func(ctx context.Context) ([]uuid.UUID, error) {
			var raw []string
			if err := direct.SelectContext(ctx, &raw, "SELECT CAST(id AS CHAR(36)) FROM "+quote(table)); err != nil {
				return nil, err
			}
			ids := make([]uuid.UUID, 0, len(raw))
			for _, r := range raw {
				id, err := uuid.Parse(r)
				if err != nil {
					return nil, fmt.Errorf("row id %q: %w", r, err)
				}
				ids = append(ids, id)
			}
			return ids, nil
		},
		settle: func(ctx context.Context) error {
			p.Cut()
			q := busy(table)
			return pollCtx(ctx, func() error {
				var n int
				if err := direct.GetContext(ctx, &n, q); err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("%d proxied session(s) still busy on the server", n)
				}
				return nil
			})
		},
	}
}

// clock is a Config.Now the test moves by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.set(time.Now())
	return c
}

func (c *clock) now() time.Time        { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)       { c.ns.Store(t.UnixNano()) }
func (c *clock) Now() func() time.Time { return c.now }

// newManager returns a Manager on f's store with OpTimeout opTimeout
// (unless cfg sets one), last-used recording off (its background writes
// would only add noise to the faults) and failures logged nowhere.
func newManager(t *testing.T, f *fixture, cfg apikeys.Config) *apikeys.Manager {
	t.Helper()
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = opTimeout
	}
	cfg.LastUsedInterval = -1
	cfg.ErrorLog = discard
	m, err := apikeys.New(f.store, &cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		_ = m.Close(ctx)
	})
	return m
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	t.Cleanup(cancel)
	return ctx
}

func okCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createParams is a public key with one origin and one assistant.
func createParams(user, name string) apikeys.CreateParams {
	return apikeys.CreateParams{
		Type:              apikeys.Public,
		Name:              name,
		AllowedOrigins:    []string{"https://app.example.com"},
		AllowedAssistants: []string{"asst-1"},
		UserID:            user,
	}
}

// okRequest is a request the keys of createParams may make.
var okRequest = apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1"}

// foreignKey returns a well-formed key whose id no real store holds.
func foreignKey(t *testing.T) string {
	t.Helper()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(context.Background(), createParams("nobody", "elsewhere"))
	require.NoError(t, err)
	return nk.Value
}

// op is one Manager operation, run with the context it is given.
type op struct {
	name string
	run  func(ctx context.Context) error
}

// allOps are every Manager operation on the user's key k (which exists in
// the store but is in no cache), plus Authorize of an unknown key.
func allOps(t *testing.T, m *apikeys.Manager, user string, k apikeys.NewKey) []op {
	unknown := foreignKey(t)
	return []op{
		{"Create", func(ctx context.Context) error {
			_, err := m.Create(ctx, createParams(user, "during fault"))
			return err
		}},
		{"Get", func(ctx context.Context) error { _, err := m.Get(ctx, user, k.ID); return err }},
		{"List", func(ctx context.Context) error {
			_, err := m.List(ctx, user, apikeys.ListParams{})
			return err
		}},
		{"Update", func(ctx context.Context) error {
			_, err := m.Update(ctx, user, k.ID, apikeys.UpdateParams{Name: new("renamed during fault")})
			return err
		}},
		{"Delete", func(ctx context.Context) error { _, err := m.Delete(ctx, user, k.ID); return err }},
		{"Rotate", func(ctx context.Context) error { _, err := m.Rotate(ctx, user, k.ID, 0); return err }},
		{"Authorize(valid key)", func(ctx context.Context) error {
			_, err := m.Authorize(ctx, k.Value, okRequest)
			return err
		}},
		{"Authorize(unknown key)", func(ctx context.Context) error {
			_, err := m.Authorize(ctx, unknown, okRequest)
			return err
		}},
	}
}

// requireFailsClosed runs o with a callDeadline context and asserts that it
// fails with a *StoreError that is neither ErrInvalidKey nor ErrNotFound.
// It returns the error, for the callers that know how it must have ended
// (by a deadline, on a hung server). No duration is asserted (issue 10): a
// call that ignored its deadline would wait for the proxy's hang, a minute,
// and then succeed or fail otherwise, which these checks catch.
func requireFailsClosed(t *testing.T, f *fixture, fault string, o op) error {
	t.Helper()
	start := time.Now()
	err := o.run(callCtx(t))
	elapsed := time.Since(start)
	require.Errorf(t, err, "%s %s: %s succeeded", f.name, fault, o.name)
	var se *apikeys.StoreError
	assert.ErrorAsf(t, err, &se, "%s %s: %s: want a *apikeys.StoreError", f.name, fault, o.name)
	assert.NotErrorIs(t, err, apikeys.ErrInvalidKey, "%s %s: %s", f.name, fault, o.name)
	assert.NotErrorIs(t, err, apikeys.ErrNotFound, "%s %s: %s", f.name, fault, o.name)
	t.Logf("%s %s: %s failed in %v with StoreError: %v", f.name, fault, o.name, elapsed.Round(time.Millisecond), err)
	return err
}

// requireEndedByDeadline asserts that err, from a call to a hung server,
// ended because a deadline (the caller's or OpTimeout) expired.
func requireEndedByDeadline(t *testing.T, f *fixture, fault, what string, err error) {
	t.Helper()
	assert.ErrorIsf(t, err, context.DeadlineExceeded, "%s %s: %s must end by its deadline", f.name, fault, what)
}

// guarded is what the middleware protects in these tests.
const guarded = "guarded content"

// serve serves m's middleware in front of a handler that answers 200.
func serve(t *testing.T, m *apikeys.Manager) *httptest.Server {
	t.Helper()
	mw, err := middleware.New(m, &middleware.Config{ErrorLog: discard, Resource: func(*http.Request) (string, bool, error) {
		return okRequest.AssistantID, false, nil // the assistant every test key allows
	}})
	require.NoError(t, err)
	srv := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, guarded)
	})))
	t.Cleanup(srv.Close)
	return srv
}

// fetch sends a request with key and the origin of okRequest, and returns
// the status, the body and how long it took. Its own deadline only stops a
// broken test: it is well below the proxy's hang, and far above OpTimeout.
func fetch(t *testing.T, srv *httptest.Server, key string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang/2)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Origin", okRequest.Origin)
	start := time.Now()
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), time.Since(start)
}

// requireMiddleware503 asserts the middleware answers 503 for key. The
// request's own context has no deadline, so on a hung server only the
// Manager's OpTimeout can end the store call before the proxy's hang (a
// minute), which would outlast fetch's deadline.
func requireMiddleware503(t *testing.T, f *fixture, fault string, srv *httptest.Server, key string) {
	t.Helper()
	status, body, elapsed := fetch(t, srv, key)
	assert.Equalf(t, http.StatusServiceUnavailable, status, "%s %s: middleware status; body %s", f.name, fault, body)
	assert.NotContains(t, body, guarded)
	t.Logf("%s %s: middleware answered %d in %v", f.name, fault, status, elapsed.Round(time.Millisecond))
}

// poll calls cond until it returns nil or within passes, ticking every
// 50ms; it returns the last error (nil on success) and the attempts made.
func poll(within time.Duration, cond func() error) (int, error) {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		err := cond()
		if err == nil || !time.Now().Before(deadline) {
			return n, err
		}
		<-tick.C
	}
}
