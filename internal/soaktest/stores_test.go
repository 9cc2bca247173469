package soaktest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/redisstore"
	"github.com/keyward/apikeys/sqlstore"
)

// The variables naming the real servers, as in the store packages' tests.
const (
	envRedisURL    = "APIKEYS_TEST_REDIS_URL"
	envPostgresDSN = "APIKEYS_TEST_POSTGRES_DSN"
	envMySQLDSN    = "APIKEYS_TEST_MYSQL_DSN"
)

// openFunc opens a fresh, isolated store for one soak run and registers,
// with t.Cleanup, everything needed to remove its data and close its
// clients. It skips t when the store is not configured.
type openFunc func(t *testing.T) apikeys.Store

func openMemstore(*testing.T) apikeys.Store { return memstore.New() }

// sqliteBusyTimeout is how long a SQLite connection waits for a lock. It is
// below the Manager's OpTimeout (soakOpTimeout), so that an operation
// waiting for the lock is never cut short by its deadline first (issue 10:
// a busy timeout of 10 s under the default OpTimeout of 5 s failed the
// soak on a loaded machine), and above the 10 s that the Manager gives a
// background last-used flush, so that a flush stuck behind the lock ends by
// its deadline, which logCounter counts apart, not with SQLITE_BUSY.
const sqliteBusyTimeout = 20 * time.Second

func openSQLite(t *testing.T) apikeys.Store {
	dsn := fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)",
		filepath.Join(t.TempDir(), "soak.db"), sqliteBusyTimeout.Milliseconds())
	return openSQL(t, "sqlite", dsn)
}

func openPostgres(t *testing.T) apikeys.Store {
	dsn := serverDSN(t, envPostgresDSN, "postgres://root@127.0.0.1:5432/test?sslmode=disable")
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err, envPostgresDSN)
	requireLoopback(t, envPostgresDSN, cfg.Host)
	return openSQL(t, "pgx", dsn)
}

func openMySQL(t *testing.T) apikeys.Store {
	dsn := serverDSN(t, envMySQLDSN, "root@tcp(127.0.0.1:3306)/test?parseTime=true")
	cfg, err := mysql.ParseDSN(dsn)
	require.NoError(t, err, envMySQLDSN)
	host := cfg.Addr
	if cfg.Net != "unix" {
		if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			host = h
		}
	} else {
		host = "/" // a socket file is local
	}
	requireLoopback(t, envMySQLDSN, host)
	return openSQL(t, "mysql", dsn)
}

// serverDSN returns the variable's value or skips t.
func serverDSN(t *testing.T, env, example string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		t.Skipf("%s is not set: skipping this soak (set it to a loopback server, e.g. %s, to run it)", env, example)
	}
	return dsn
}

// requireLoopback skips t unless host is on this machine: the soak puts a
// lot of load on the server and must never reach another machine.
func requireLoopback(t *testing.T, env, host string) {
	t.Helper()
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	t.Skipf("%s points at %q: the soak runs against loopback servers only", env, host)
}

// openSQL opens its own pool on dsn and a Store on a new, migrated table.
// Clean-up, in this order: Store.Close, DROP of the table and its versions
// table through the same pool, pool Close.
func openSQL(t *testing.T, driver, dsn string) apikeys.Store {
	t.Helper()
	db, err := sqlx.Open(driver, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	table := "apikeys_soak_" + randomHex(t)
	s, err := sqlstore.New(db, &sqlstore.Config{Table: table})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range []string{table, table + "_schema_versions", table + "_changes"} {
			q := `DROP TABLE IF EXISTS "` + name + `"`
			if s.Dialect() == sqlstore.MySQL {
				q = "DROP TABLE IF EXISTS `" + name + "`"
			}
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Errorf("clean-up: drop %s: %v", name, err)
			}
		}
	})
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Migrate(ctx))
	return s
}

// openRedis connects to APIKEYS_TEST_REDIS_URL and returns a Store in a
// random namespace, whose keys are deleted (through the same client)
// before the client is closed.
func openRedis(t *testing.T) apikeys.Store {
	t.Helper()
	url := serverDSN(t, envRedisURL, "redis://127.0.0.1:6379/0")
	opts, err := redis.ParseURL(url)
	require.NoError(t, err, envRedisURL)
	host := opts.Addr
	if opts.Network == "unix" {
		host = "/"
	} else if h, _, err := net.SplitHostPort(opts.Addr); err == nil {
		host = h
	}
	requireLoopback(t, envRedisURL, host)
	opts.PoolSize = 16
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { require.NoError(t, rdb.Close()) })

	ns := "apikeys-soak-" + randomHex(t) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var keys []string
		iter := rdb.Scan(ctx, 0, ns+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean-up: SCAN %s*: %v", ns, err)
			return
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("clean-up: DEL in %s: %v", ns, err)
				return
			}
			keys = keys[n:]
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(ctx).Err(), "Redis at %s", opts.Addr)
	s, err := redisstore.New(rdb, &redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	return s
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
