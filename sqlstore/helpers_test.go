package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/sqlstore"
)

// target is a database the tests run on.
type target struct {
	name    string // subtest name
	dialect sqlstore.Dialect
	driver  string
	env     string // variable holding the DSN; "" for SQLite (a temp file)
}

var targets = []target{
	{"sqlite", sqlstore.SQLite, "sqlite", ""},
	{"postgres", sqlstore.Postgres, "pgx", "APIKEYS_TEST_POSTGRES_DSN"},
	{"mysql", sqlstore.MySQL, "mysql", "APIKEYS_TEST_MYSQL_DSN"},
}

// dsn returns the target's DSN, or skips tb when its variable is unset.
func (tg target) dsn(tb testing.TB) string {
	tb.Helper()
	if tg.env == "" {
		path := filepath.Join(tb.TempDir(), "keys.db")
		return sqliteDSN(path)
	}
	dsn := os.Getenv(tg.env)
	if dsn == "" {
		tb.Skipf("%s is not set: skipping the %s tests (set it to run them on a real server)", tg.env, tg.name)
	}
	return dsn
}

// sqliteDSN waits up to 4 s for a lock: below the Managers' default
// OpTimeout (5 s), so that a lock wait ends in SQLite, not by the deadline
// (issue 10).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(4000)&_pragma=journal_mode(WAL)"
}

// Server databases share one pool per DSN across tests, closed by TestMain,
// so parallel tests do not multiply connections.
var (
	poolsMu sync.Mutex
	pools   = map[string]*sqlx.DB{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	poolsMu.Lock()
	for _, db := range pools {
		db.Close()
	}
	poolsMu.Unlock()
	os.Exit(code)
}

// testDB is an open database and how to open another pool on it.
type testDB struct {
	*sqlx.DB
	target
	dsnText string
}

// open returns the target's database: a fresh SQLite file, or the shared
// pool of a server (skipping tb when its DSN is unset).
func (tg target) open(tb testing.TB) testDB {
	tb.Helper()
	dsn := tg.dsn(tb)
	if tg.env == "" {
		return testDB{openPool(tb, tg.driver, dsn), tg, dsn}
	}
	poolsMu.Lock()
	defer poolsMu.Unlock()
	db, ok := pools[dsn]
	if !ok {
		var err error
		db, err = sqlx.Open(tg.driver, dsn)
		require.NoError(tb, err)
		db.SetMaxOpenConns(12)
		db.SetMaxIdleConns(12)
		pools[dsn] = db
	}
	return testDB{db, tg, dsn}
}

// openPool opens a separate pool, closed when tb ends: another "process".
func openPool(tb testing.TB, driver, dsn string) *sqlx.DB {
	tb.Helper()
	db, err := sqlx.Open(driver, dsn)
	require.NoError(tb, err)
	db.SetMaxOpenConns(8)
	tb.Cleanup(func() { db.Close() })
	return db
}

// forEach runs fn as a parallel subtest on every target, skipping those
// whose server is not configured.
func forEach(t *testing.T, fn func(t *testing.T, db testDB)) {
	t.Helper()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tg.open(t))
		})
	}
}

// randomTable returns a table name no other test uses.
func randomTable(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err)
	return "apikeys_test_" + hex.EncodeToString(b[:])
}

// newStore returns a Store on a new table of db, not yet migrated. The
// table, its versions table and its change log are dropped when tb ends.
func newStore(tb testing.TB, db *sqlx.DB, table string) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.New(db, &sqlstore.Config{Table: table})
	require.NoError(tb, err)
	tb.Cleanup(func() { dropTables(tb, db, s.Dialect(), table) })
	tb.Cleanup(func() { require.NoError(tb, s.Close()) }) // runs first
	return s
}

// migratedStore returns a Store on a new, migrated table of db.
func migratedStore(tb testing.TB, db *sqlx.DB) *sqlstore.Store {
	tb.Helper()
	s := newStore(tb, db, randomTable(tb))
	require.NoError(tb, s.Migrate(ctx(tb)))
	return s
}

func dropTables(tb testing.TB, db *sqlx.DB, d sqlstore.Dialect, table string) {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{table, table + "_schema_versions", table + "_changes"} {
		if _, err := db.ExecContext(c, "DROP TABLE IF EXISTS "+quote(d, name)); err != nil {
			tb.Errorf("drop %s: %v", name, err)
		}
	}
}

func quote(d sqlstore.Dialect, ident string) string {
	if d == sqlstore.MySQL {
		return "`" + ident + "`"
	}
	return `"` + ident + `"`
}

// ph returns the dialect's n-th placeholder.
func ph(d sqlstore.Dialect, n int) string {
	if d == sqlstore.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

func ctx(tb testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return c
}

// at is an instant with microsecond precision.
var at = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func testRecord(tb testing.TB, user string) apikeys.Record {
	tb.Helper()
	var d apikeys.Digest
	_, err := rand.Read(d[:])
	require.NoError(tb, err)
	rec := apikeys.Record{Digest: d, Version: 1}
	rec.Key = apikeys.Key{
		ID:                apikeysID(tb),
		Type:              apikeys.Public,
		Name:              "test key",
		AllowedOrigins:    []string{"https://app.example.com"},
		AllowedAssistants: []string{"asst-1", "asst-2"},
		UserID:            user,
		UserEmail:         "someone@example.com",
		Hint:              "ak_pk_...abcd",
		CreatedAt:         at,
		UpdatedAt:         at.Add(time.Second),
		ExpiresAt:         at.Add(24 * time.Hour),
		LastUsedAt:        at.Add(time.Minute),
	}
	return rec
}

// requireSame fails unless got and want hold the same record, times
// equal and in UTC.
func requireSame(tb testing.TB, want, got apikeys.Record) {
	tb.Helper()
	norm := func(l []string) []string {
		if len(l) == 0 {
			return nil
		}
		return l
	}
	require.Equal(tb, want.ID, got.ID)
	require.Equal(tb, want.Type, got.Type)
	require.Equal(tb, want.Name, got.Name)
	require.Equal(tb, norm(want.AllowedOrigins), norm(got.AllowedOrigins))
	require.Equal(tb, norm(want.AllowedAssistants), norm(got.AllowedAssistants))
	require.Equal(tb, want.TransientAssistant, got.TransientAssistant)
	require.Equal(tb, want.UserID, got.UserID)
	require.Equal(tb, want.UserEmail, got.UserEmail)
	require.Equal(tb, want.Hint, got.Hint)
	require.Equal(tb, want.Digest, got.Digest)
	require.Equal(tb, want.Version, got.Version)
	require.Equal(tb, want.SuccessorID, got.SuccessorID, "SuccessorID")
	require.Equal(tb, norm(want.Scopes), norm(got.Scopes), "Scopes")
	if len(want.AllowedIPs) == 0 {
		require.Empty(tb, got.AllowedIPs, "AllowedIPs")
	} else {
		require.Equal(tb, want.AllowedIPs, got.AllowedIPs, "AllowedIPs")
	}
	require.Equal(tb, want.Disabled, got.Disabled, "Disabled")
	require.Equal(tb, want.RateLimit, got.RateLimit, "RateLimit")
	require.Equal(tb, want.Credits, got.Credits, "Credits")
	require.Equal(tb, want.Usage, got.Usage, "Usage")
	for _, tt := range []struct {
		name      string
		want, got time.Time
	}{
		{"CreatedAt", want.CreatedAt, got.CreatedAt},
		{"UpdatedAt", want.UpdatedAt, got.UpdatedAt},
		{"ExpiresAt", want.ExpiresAt, got.ExpiresAt},
		{"LastUsedAt", want.LastUsedAt, got.LastUsedAt},
	} {
		require.Truef(tb, tt.want.Equal(tt.got), "%s = %v, want %v", tt.name, tt.got, tt.want)
		if !tt.got.IsZero() {
			require.Equalf(tb, time.UTC, tt.got.Location(), "%s location", tt.name)
		}
	}
}

// ids returns the records' ids in order.
func ids(recs []apikeys.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID.String()
	}
	return out
}

func apikeysID(tb testing.TB) uuid.UUID {
	tb.Helper()
	id, err := uuid.NewV7()
	require.NoError(tb, err)
	return id
}
