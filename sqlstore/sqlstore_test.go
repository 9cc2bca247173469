package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "time/tzdata" // zones for the DSNs of TestTimesIgnoreSessionZone

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/sqlstore"
	"github.com/keyward/apikeys/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		storetest.RunConfig(t, func(t *testing.T) apikeys.Store { return migratedStore(t, db.DB) }, storetest.Config{
			// Another instance: its own pool and Store on the same table.
			Reopen: func(t *testing.T, s apikeys.Store) apikeys.Store {
				other, err := sqlstore.New(openPool(t, db.driver, db.dsnText), &sqlstore.Config{Table: s.(*sqlstore.Store).Table()})
				require.NoError(t, err)
				t.Cleanup(func() { other.Close() })
				return other
			},
		})
	})
}

// versionRows counts the rows of the store's versions table.
func versionRows(t *testing.T, db *sqlx.DB, s *sqlstore.Store) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(ctx(t), &n,
		"SELECT COUNT(*) FROM "+quote(s.Dialect(), s.Table()+"_schema_versions")))
	return n
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		tests := []struct {
			name  string
			pools int // separate *sqlx.DB pools, as separate processes would have
			runs  int // Migrate calls per pool, all started together
		}{
			{"twice", 1, 2},
			{"concurrent goroutines", 1, 8},
			{"concurrent pools", 2, 4},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				table := randomTable(t)
				dbs := []*sqlx.DB{db.DB}
				for range tt.pools - 1 {
					dbs = append(dbs, openPool(t, db.driver, db.dsnText))
				}
				var stores []*sqlstore.Store
				for _, p := range dbs {
					// Open each pool's first connection in turn: on a new
					// SQLite file, two connections switching it to WAL at
					// once can get SQLITE_BUSY without waiting. Migrate's
					// own concurrency is what this test is about.
					require.NoError(t, p.PingContext(ctx(t)))
					stores = append(stores, newStore(t, p, table))
				}
				if tt.name == "twice" {
					require.NoError(t, stores[0].Migrate(ctx(t)))
					require.NoError(t, stores[0].Migrate(ctx(t)))
				} else {
					start := make(chan struct{})
					errs := make(chan error, len(stores)*tt.runs)
					var wg sync.WaitGroup
					for _, s := range stores {
						for range tt.runs {
							wg.Go(func() {
								<-start
								errs <- s.Migrate(ctx(t))
							})
						}
					}
					close(start)
					wg.Wait()
					close(errs)
					for err := range errs {
						assert.NoError(t, err)
					}
				}
				// Every migration is recorded once, whoever ran
				// them.
				assert.Equal(t, int(stores[0].LatestVersion()), versionRows(t, db.DB, stores[0]))
				// Every pool sees a working table.
				for _, s := range stores {
					rec := testRecord(t, "migrate-user")
					require.NoError(t, s.Create(ctx(t), rec))
					got, err := stores[0].Get(ctx(t), rec.ID)
					require.NoError(t, err)
					requireSame(t, rec, got)
				}
			})
		}
	})
}

// TestGetBeforeMigrate checks that a statement that could not be prepared
// (no table yet) is an error, not "not found", and is prepared once the
// table exists.
func TestGetBeforeMigrate(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := newStore(t, db.DB, randomTable(t))
		_, err := s.Get(ctx(t), apikeysID(t))
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)
		require.NoError(t, s.Migrate(ctx(t)))
		_, err = s.Get(ctx(t), apikeysID(t))
		require.ErrorIs(t, err, apikeys.ErrNotFound)
	})
}

func TestClose(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		rec := testRecord(t, "close-user")
		require.NoError(t, s.Create(ctx(t), rec))
		_, err := s.Get(ctx(t), rec.ID)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = s.Get(ctx(t), rec.ID)
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)
		_, _, err = s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)
		require.NoError(t, db.PingContext(ctx(t)), "Close must not close the *sqlx.DB")
	})
}

// TestUserIDsCompareExactly: tenancy must not depend on a collation that
// folds case or pads spaces.
func TestUserIDsCompareExactly(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		users := []string{"Tenant", "tenant", "TENANT", "tenant ", "ténant"}
		recs := make(map[string]apikeys.Record)
		for _, u := range users {
			rec := testRecord(t, u)
			require.NoError(t, s.Create(ctx(t), rec))
			recs[u] = rec
		}
		for _, u := range users {
			list, err := s.List(ctx(t), u, apikeys.ListQuery{Limit: 10})
			require.NoError(t, err)
			require.Equal(t, []string{recs[u].ID.String()}, ids(list), "List(%q)", u)
			for _, other := range users {
				if other == u {
					continue
				}
				steal := recs[other]
				steal.UserID = u
				steal.Version++
				require.ErrorIs(t, s.Update(ctx(t), steal), apikeys.ErrNotFound, "Update(%q's key as %q)", other, u)
				require.ErrorIs(t, s.Delete(ctx(t), u, recs[other].ID), apikeys.ErrNotFound, "Delete(%q's key as %q)", other, u)
			}
		}
	})
}

// TestTimesIgnoreSessionZone writes and reads through a pool whose session
// and driver use another time zone and checks that the stored value is UTC
// and that both pools read the same instants, in UTC.
func TestTimesIgnoreSessionZone(t *testing.T) {
	t.Parallel()
	// The raw stored form of created_at, as UTC text or Unix microseconds.
	raw := map[sqlstore.Dialect]struct {
		expr string
		want string
	}{
		sqlstore.Postgres: {`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`, "2026-03-14 15:09:26.535897"},
		sqlstore.MySQL:    {`CAST(created_at AS CHAR)`, "2026-03-14 15:09:26.535897"},
		sqlstore.SQLite:   {`CAST(created_at AS TEXT)`, strconv.FormatInt(at.UnixMicro(), 10)},
	}
	// Pools that see time through another zone: the session's, and for
	// MySQL the driver's loc, or no parseTime at all.
	zoned := map[sqlstore.Dialect][]string{
		sqlstore.Postgres: {"timezone=Asia/Kathmandu"},
		sqlstore.MySQL: {
			"loc=Asia%2FKathmandu&time_zone=%27%2B05%3A45%27",
			"parseTime=false&time_zone=%27-03%3A30%27",
		},
		sqlstore.SQLite: {""},
	}
	kathmandu, err := time.LoadLocation("Asia/Kathmandu")
	require.NoError(t, err)
	forEach(t, func(t *testing.T, db testDB) {
		plain := migratedStore(t, db.DB)
		for _, params := range zoned[db.dialect] {
			dsn := db.dsnText
			if params != "" {
				dsn = addParam(dsn, params)
			}
			other, err := sqlstore.New(openPool(t, db.driver, dsn), &sqlstore.Config{Table: plain.Table()})
			require.NoError(t, err)
			t.Cleanup(func() { other.Close() })

			for _, tt := range []struct {
				name          string
				write, read   *sqlstore.Store
				writeInZone   bool
				expires, used bool
			}{
				{"plain to zoned", plain, other, false, true, true},
				{"zoned to plain", other, plain, true, true, false},
				{"zoned to zoned, local times", other, other, true, false, true},
			} {
				name := tt.name + " with " + params
				rec := testRecord(t, "zone-user")
				if tt.writeInZone {
					rec.CreatedAt = rec.CreatedAt.In(kathmandu)
					rec.UpdatedAt = rec.UpdatedAt.In(kathmandu)
				}
				if !tt.expires {
					rec.ExpiresAt = time.Time{}
				}
				if !tt.used {
					rec.LastUsedAt = time.Time{}
				}
				require.NoError(t, tt.write.Create(ctx(t), rec), name)
				got, err := tt.read.Get(ctx(t), rec.ID)
				require.NoError(t, err, name)
				want := rec
				want.CreatedAt, want.UpdatedAt = rec.CreatedAt.UTC(), rec.UpdatedAt.UTC()
				requireSame(t, want, got)

				var stored string
				require.NoError(t, db.GetContext(ctx(t), &stored,
					"SELECT "+raw[db.dialect].expr+" FROM "+quote(db.dialect, plain.Table())+" WHERE id = "+ph(db.dialect, 1), rec.ID),
					name)
				assert.Equal(t, raw[db.dialect].want, stored, "%s: stored created_at", name)
			}
		}
	})
}

func addParam(dsn, param string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

// unavailable describes a database that cannot answer.
type unavailable struct {
	name   string
	driver string
	dsn    string
}

// TestUnavailable checks that every call on a database that is down, or
// that never answers, or with a canceled context, fails, ended by its
// context, with an error that is not ErrNotFound, and that Authorize fails
// closed. No duration is asserted (issue 10): the drivers' own timeouts are
// an hour, so against the silent server only the context can end a call,
// and one that ignored it would still be running when the test gives up.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	pgDSN := func(addr string) string {
		return "postgres://nobody@" + addr + "/nothing?sslmode=disable&connect_timeout=3600"
	}
	myDSN := func(addr string) string {
		return "nobody@tcp(" + addr + ")/nothing?parseTime=true&timeout=1h&readTimeout=1h&writeTimeout=1h"
	}
	cases := []unavailable{
		{"postgres refused", "pgx", pgDSN(faultproxy.RefusedAddr(t))},
		{"postgres silent", "pgx", pgDSN(faultproxy.SilentAddr(t))},
		{"mysql refused", "mysql", myDSN(faultproxy.RefusedAddr(t))},
		{"mysql silent", "mysql", myDSN(faultproxy.SilentAddr(t))},
		{"sqlite unopenable", "sqlite", sqliteDSN(filepath.Join(t.TempDir(), "no such dir", "keys.db"))},
	}
	// A real key of the default prefix, so Authorize gets past parsing.
	issuer, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := issuer.Create(context.Background(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	rec := testRecord(t, "u")

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := openPool(t, tc.driver, tc.dsn)
			s, err := sqlstore.New(db, &sqlstore.Config{Table: "api_keys_unavailable"})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			m, err := apikeys.New(s, nil)
			require.NoError(t, err)

			ops := []struct {
				name string
				call func(context.Context) error
			}{
				{"Migrate", s.Migrate},
				{"CheckSchema", s.CheckSchema},
				{"Create", func(c context.Context) error { return s.Create(c, rec) }},
				{"Get", func(c context.Context) error { _, err := s.Get(c, rec.ID); return err }},
				{"List", func(c context.Context) error {
					_, err := s.List(c, rec.UserID, apikeys.ListQuery{Limit: 10})
					return err
				}},
				{"ListBefore", func(c context.Context) error {
					_, err := s.List(c, rec.UserID, apikeys.ListQuery{Before: rec.ID, Limit: 10})
					return err
				}},
				{"Update", func(c context.Context) error { up := rec; up.Version++; return s.Update(c, up) }},
				{"Delete", func(c context.Context) error { return s.Delete(c, rec.UserID, rec.ID) }},
				{"Spend", func(c context.Context) error {
					_, _, err := s.Spend(c, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
					return err
				}},
				{"Refund", func(c context.Context) error {
					return s.Refund(c, apikeys.RefundRequest{ID: rec.ID, Cost: 1})
				}},
				{"Authorize", func(c context.Context) error {
					_, err := m.Authorize(c, nk.Value, apikeys.Request{})
					var se *apikeys.StoreError
					if err != nil && !errors.As(err, &se) {
						t.Errorf("Authorize = %v (%T), want a *apikeys.StoreError", err, err)
					}
					return err
				}},
			}
			contexts := []struct {
				name string
				make func() (context.Context, context.CancelFunc)
			}{
				{"deadline", func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(context.Background(), 300*time.Millisecond)
				}},
				{"canceled", func() (context.Context, context.CancelFunc) {
					c, cancel := context.WithCancel(context.Background())
					cancel()
					return c, cancel
				}},
			}
			for _, cc := range contexts {
				for _, op := range ops {
					c, cancel := cc.make()
					errc := make(chan error, 1)
					go func() { errc <- op.call(c) }()
					var err error
					select {
					case err = <-errc:
					case <-time.After(time.Minute): // a guard against a broken store, not a timing
						cancel()
						t.Fatalf("%s (%s context) still running a minute later: the context does not reach it", op.name, cc.name)
					}
					cancel()
					if err == nil {
						t.Errorf("%s (%s context) succeeded on an unavailable database", op.name, cc.name)
						continue
					}
					assert.NotErrorIs(t, err, apikeys.ErrNotFound, "%s (%s context)", op.name, cc.name)
					assert.NotErrorIs(t, err, apikeys.ErrInvalidKey, "%s (%s context)", op.name, cc.name)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	raw, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "new.db")))
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })

	tests := []struct {
		name    string
		db      *sqlx.DB
		cfg     *sqlstore.Config
		want    sqlstore.Dialect
		wantErr string // substring; "" for success
	}{
		{"nil db", nil, nil, "", "nil *sqlx.DB"},
		{"pgx", sqlx.NewDb(raw, "pgx"), nil, sqlstore.Postgres, ""},
		{"pgx/v5", sqlx.NewDb(raw, "pgx/v5"), nil, sqlstore.Postgres, ""},
		{"lib/pq", sqlx.NewDb(raw, "postgres"), nil, sqlstore.Postgres, ""},
		{"mysql", sqlx.NewDb(raw, "mysql"), nil, sqlstore.MySQL, ""},
		{"modernc sqlite", sqlx.NewDb(raw, "sqlite"), nil, sqlstore.SQLite, ""},
		{"mattn sqlite3", sqlx.NewDb(raw, "sqlite3"), nil, sqlstore.SQLite, ""},
		{"unknown driver", sqlx.NewDb(raw, "oracle"), nil, "", `unsupported driver "oracle"`},
		{"empty driver", sqlx.NewDb(raw, ""), nil, "", `unsupported driver ""`},
		{"dialect override", sqlx.NewDb(raw, "otel-sqlite"), &sqlstore.Config{Dialect: sqlstore.SQLite}, sqlstore.SQLite, ""},
		{"unknown dialect", sqlx.NewDb(raw, "sqlite"), &sqlstore.Config{Dialect: "oracle"}, "", `unknown Config.Dialect "oracle"`},
		{"zero config", sqlx.NewDb(raw, "sqlite"), &sqlstore.Config{}, sqlstore.SQLite, ""},
		{"longest table", sqlx.NewDb(raw, "sqlite"), &sqlstore.Config{Table: "_" + strings.Repeat("k", sqlstore.MaxTableLen-1)}, sqlstore.SQLite, ""},
		{"mixed case table", sqlx.NewDb(raw, "sqlite"), &sqlstore.Config{Table: "Api_Keys2"}, sqlstore.SQLite, ""},
	}
	for _, bad := range []string{
		"1keys", "api-keys", "api keys", "api_keys;DROP TABLE x", `api"keys`, "api`keys", "schema.api_keys",
		"clés", strings.Repeat("k", sqlstore.MaxTableLen+1),
	} {
		tests = append(tests, struct {
			name    string
			db      *sqlx.DB
			cfg     *sqlstore.Config
			want    sqlstore.Dialect
			wantErr string
		}{"bad table " + bad, sqlx.NewDb(raw, "sqlite"), &sqlstore.Config{Table: bad}, "", "table name"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlstore.New(tt.db, tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, s.Dialect())
			if tt.cfg == nil || tt.cfg.Table == "" {
				require.Equal(t, sqlstore.DefaultTable, s.Table())
			} else {
				require.Equal(t, tt.cfg.Table, s.Table())
			}
			require.NoError(t, s.Close())
		})
	}
}

func TestSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dialect sqlstore.Dialect
		want    []string
	}{
		{sqlstore.Postgres, []string{`CREATE TABLE IF NOT EXISTS "my_keys"`, "JSONB", "BYTEA", "TIMESTAMPTZ",
			`CREATE INDEX IF NOT EXISTS "my_keys_user_id_idx" ON "my_keys" (user_id, id)`,
			`ALTER TABLE "my_keys" ADD COLUMN IF NOT EXISTS successor_id UUID`,
			`ALTER TABLE "my_keys"`,
			`ADD COLUMN IF NOT EXISTS scopes      JSONB   NOT NULL DEFAULT '[]'`,
			`ADD COLUMN IF NOT EXISTS allowed_ips JSONB   NOT NULL DEFAULT '[]'`,
			`ADD COLUMN IF NOT EXISTS disabled    BOOLEAN NOT NULL DEFAULT FALSE`,
			`ADD COLUMN IF NOT EXISTS rate_limit              BIGINT CHECK (rate_limit >= 1)`,
			`ADD COLUMN IF NOT EXISTS window_used             BIGINT NOT NULL DEFAULT 0 CHECK (window_used >= 0)`}},
		{sqlstore.MySQL, []string{"CREATE TABLE IF NOT EXISTS `my_keys`", "BINARY(32)", "DATETIME(6)", "VARBINARY(255)",
			"KEY `my_keys_user_id_idx` (user_id, id)",
			"table_name = 'my_keys'", "ALTER TABLE `my_keys` ADD COLUMN successor_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL",
			"CREATE TABLE IF NOT EXISTS `my_keys_changes`", "seq        BIGINT      NOT NULL AUTO_INCREMENT",
			"column_name = 'scopes'", "ALTER TABLE `my_keys` ADD COLUMN scopes JSON NOT NULL DEFAULT (''[]'')",
			"column_name = 'allowed_ips'", "ALTER TABLE `my_keys` ADD COLUMN allowed_ips JSON NOT NULL DEFAULT (''[]'')",
			"column_name = 'disabled'", "ALTER TABLE `my_keys` ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE",
			"column_name = 'window_used'", "ALTER TABLE `my_keys`\n        ADD COLUMN rate_limit              BIGINT NULL,",
			"ADD COLUMN refilled_at             BIGINT NOT NULL DEFAULT 0'"}},
		{sqlstore.SQLite, []string{`CREATE TABLE IF NOT EXISTS "my_keys"`, "BLOB",
			`CREATE INDEX IF NOT EXISTS "my_keys_user_id_idx" ON "my_keys" (user_id, id)`,
			`ALTER TABLE "my_keys" ADD COLUMN successor_id TEXT`,
			`CREATE TABLE IF NOT EXISTS "my_keys_changes"`, "PRIMARY KEY AUTOINCREMENT",
			`ALTER TABLE "my_keys" ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]'`,
			`ALTER TABLE "my_keys" ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '[]'`,
			`ALTER TABLE "my_keys" ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE "my_keys" ADD COLUMN rate_limit INTEGER CHECK (rate_limit >= 1)`,
			`ALTER TABLE "my_keys" ADD COLUMN refilled_at INTEGER NOT NULL DEFAULT 0`}},
	}
	for _, tt := range tests {
		t.Run(string(tt.dialect), func(t *testing.T) {
			t.Parallel()
			text, err := sqlstore.Schema(tt.dialect, "my_keys")
			require.NoError(t, err)
			for _, w := range tt.want {
				assert.Contains(t, text, w)
			}
			assert.NotContains(t, text, "{{")
			assert.NotContains(t, text, "api_keys")
			assert.NotContains(t, strings.ToLower(text), "key_value")

			def, err := sqlstore.Schema(tt.dialect, "")
			require.NoError(t, err)
			assert.Equal(t, strings.ReplaceAll(text, "my_keys", "api_keys"), def)
		})
	}
	_, err := sqlstore.Schema("oracle", "")
	require.ErrorContains(t, err, "unknown dialect")
	_, err = sqlstore.Schema(sqlstore.Postgres, "x; DROP TABLE y")
	require.ErrorContains(t, err, "table name")
}

// TestStoredSchema checks what the database made of the schema: the digest
// column is binary and nothing else in a row holds the key value.
func TestStoredSchema(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		nk, err := m.Create(ctx(t), apikeys.CreateParams{
			Type: apikeys.Public, Name: "stored", UserID: "schema-user",
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst-1"},
		})
		require.NoError(t, err)
		rows, err := db.QueryxContext(ctx(t), "SELECT * FROM "+quote(db.dialect, s.Table()))
		require.NoError(t, err)
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
			row := map[string]any{}
			require.NoError(t, rows.MapScan(row))
			require.Len(t, row, 27)
			digest, ok := row["digest"].([]byte)
			require.True(t, ok, "digest is %T", row["digest"])
			require.Len(t, digest, 32)
			body := nk.Value[len(m.Prefix())+4:]
			for col, v := range row {
				var text string
				switch v := v.(type) {
				case []byte:
					text = string(v)
				case string:
					text = v
				}
				for i := 0; i+12 <= len(body); i++ {
					require.NotContains(t, text, body[i:i+12], "column %s holds a piece of the key value", col)
				}
			}
		}
		require.NoError(t, rows.Err())
		require.Equal(t, 1, n)
		_, err = m.Authorize(ctx(t), nk.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1"})
		require.NoError(t, err)
		_, err = m.Authorize(ctx(t), nk.Value, apikeys.Request{Origin: "https://evil.example.com"})
		require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
	})
}

// TestTimeEdges round-trips times at the ends of what the columns hold,
// and checks that sub-microsecond input is truncated, not rounded.
func TestTimeEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero", time.Time{}, time.Time{}},
		{"before 1970", time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC), time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC)},
		{"year 1000", time.Date(1000, 1, 1, 0, 0, 0, 1000, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{"last microsecond of 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"nanoseconds truncated", time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 999999000, time.UTC)},
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		for _, tt := range tests {
			rec := testRecord(t, "edge-user")
			rec.CreatedAt, rec.UpdatedAt, rec.ExpiresAt, rec.LastUsedAt = tt.in, tt.in, tt.in, tt.in
			require.NoError(t, s.Create(ctx(t), rec), tt.name)
			got, err := s.Get(ctx(t), rec.ID)
			require.NoError(t, err, tt.name)
			want := rec
			want.CreatedAt, want.UpdatedAt, want.ExpiresAt, want.LastUsedAt = tt.want, tt.want, tt.want, tt.want
			requireSame(t, want, got)
		}
	})
}
