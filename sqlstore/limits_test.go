package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/sqlstore"
)

// Tests of schema version 5 and of Spend and Refund that are particular
// to SQL: the upgrade, the columns' checks, and how each dialect's
// statements lock. storetest checks the rule itself.

// limitColumns are the columns schema version 5 adds.
var limitColumns = []string{
	"rate_limit", "rate_window_seconds", "credits_remaining", "refill_amount", "refill_interval_seconds",
	"window_start", "window_used", "refilled_at",
}

// limitedRecord returns a record of a new key with a rate limit of limit
// per hour and credits with a refill, its counters in the current hour.
func limitedRecord(t *testing.T, limit int64) apikeys.Record {
	t.Helper()
	rec := testRecord(t, "limits-user")
	now := time.Now().Unix()
	rec.RateLimit = &apikeys.RateLimit{Limit: limit, WindowSeconds: 3600}
	rec.Credits = &apikeys.Credits{Remaining: 1000, Refill: &apikeys.Refill{Amount: 1000, IntervalSeconds: 86400}}
	rec.Usage = apikeys.Usage{WindowStart: now - now%3600, RefilledAt: now}
	return rec
}

// TestUpgradeFromVersion4 fills a version-4 table as version 4 of the
// store did, migrates it, and checks that every key is still there, reads
// as a key without limits and zero counters, is only read by Spend, and
// authorizes; that an instance of version 4 still running inserts keys
// without limits; and that an upgraded row takes limits, which Spend then
// spends from.
func TestUpgradeFromVersion4(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		keys := issueKeys(t)
		s := newStore(t, db.DB, randomTable(t))
		require.NoError(t, s.MigrateTo(ctx(t), 4))
		require.Equal(t, 4, versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), false, limitColumns...)
		for _, k := range keys[:len(keys)-1] {
			v4Insert(t, db, s.Table(), k.rec)
		}
		spendOf := func(k issued) apikeys.SpendRequest {
			return apikeys.SpendRequest{ID: k.rec.ID, Digest: k.rec.Digest, Cost: 1, Now: time.Now().Unix()}
		}

		// This version's statements need the columns: before the upgrade
		// a spend fails, and is never "not found".
		_, _, err := s.Spend(ctx(t), spendOf(keys[0]))
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)

		require.NoError(t, s.Migrate(ctx(t)))
		require.Equal(t, int(s.LatestVersion()), versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), true, limitColumns...)
		v4Insert(t, db, s.Table(), keys[len(keys)-1].rec) // an instance of version 4, after the upgrade

		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { // before the table is dropped
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			assert.NoError(t, m.Close(c))
		})
		for _, k := range keys {
			got, err := s.Get(ctx(t), k.rec.ID)
			require.NoError(t, err)
			requireSame(t, k.rec, got)
			require.Nil(t, got.RateLimit, "%s: RateLimit", k.rec.Name)
			require.Nil(t, got.Credits, "%s: Credits", k.rec.Name)
			require.Zero(t, got.Usage, "%s: Usage", k.rec.Name)

			spent, ok, err := s.Spend(ctx(t), spendOf(k))
			require.NoError(t, err, "%s: Spend", k.rec.Name)
			require.False(t, ok, "%s: Spend spent from a key without limits", k.rec.Name)
			requireSame(t, k.rec, spent)

			key, err := m.Authorize(ctx(t), k.value, k.req)
			require.NoError(t, err, "Authorize(%s) after the upgrade", k.rec.Name)
			require.Equal(t, k.rec.ID, key.ID)
		}

		// An upgraded row takes a rate limit, and Spend honours it.
		up := keys[len(keys)-1]
		rec, err := s.Get(ctx(t), up.rec.ID)
		require.NoError(t, err)
		rec.RateLimit = &apikeys.RateLimit{Limit: 1, WindowSeconds: 3600}
		rec.Version++
		require.NoError(t, s.Update(ctx(t), rec))
		_, ok, err := s.Spend(ctx(t), spendOf(up))
		require.NoError(t, err)
		require.True(t, ok, "the first spend of a limit of 1")
		_, err = m.Authorize(ctx(t), up.value, up.req)
		require.ErrorIs(t, err, apikeys.ErrRateLimited, "Authorize past the limit")
	})
}

// TestMalformedLimitsFailClosed: limit columns holding what no Store
// writes make the row an error for Get, List and Spend, never
// apikeys.ErrNotFound and never a key without the limit, and Authorize
// refuses the key with a *apikeys.StoreError. PostgreSQL and SQLite refuse
// most such values by their CHECK constraints (and every database some by
// its types): there the write must fail instead.
func TestMalformedLimitsFailClosed(t *testing.T) {
	t.Parallel()
	var (
		all       = []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL, sqlstore.SQLite}
		mysql     = []sqlstore.Dialect{sqlstore.MySQL}
		checked   = []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite}
		sqlite    = []sqlstore.Dialect{sqlstore.SQLite}
		notSQLite = []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL}
	)
	// Far enough above MaxQuota that a charge does not bring it back in
	// range: PostgreSQL's Spend charges in the statement that reads, so
	// credits of MaxQuota+1 would read as the MaxQuota a spend leaves.
	over := strconv.FormatInt(apikeys.MaxQuota+1000, 10)
	overSeconds := strconv.Itoa(apikeys.MaxQuotaSeconds + 1)
	tests := []struct {
		name    string
		set     string             // an SQL SET list of literals
		column  string             // named by the error
		read    []sqlstore.Dialect // the database takes it as written: reading must fail
		refused []sqlstore.Dialect // the database refuses it
	}{
		{"a rate limit without a window", "rate_window_seconds = NULL", "rate_limit", mysql, checked},
		{"a window without a rate limit", "rate_limit = NULL", "rate_limit", mysql, checked},
		{"a rate limit of 0", "rate_limit = 0", "rate_limit", mysql, checked},
		{"a rate limit above MaxQuota", "rate_limit = " + over, "rate_limit", all, nil},
		{"a window of 0", "rate_window_seconds = 0", "rate_window_seconds", mysql, checked},
		{"a window above MaxQuotaSeconds", "rate_window_seconds = " + overSeconds, "rate_window_seconds", all, nil},
		{"credits below 0", "credits_remaining = -1", "credits_remaining", mysql, checked},
		{"credits above MaxQuota", "credits_remaining = " + over, "credits_remaining", all, nil},
		{"a refill without credits", "credits_remaining = NULL", "refill_amount", mysql, checked},
		{"a refill without an interval", "refill_interval_seconds = NULL", "refill_amount", mysql, checked},
		{"a refill of 0", "refill_amount = 0", "refill_amount", mysql, checked},
		{"a refill interval above MaxQuotaSeconds", "refill_interval_seconds = " + overSeconds, "refill_interval_seconds", all, nil},
		{"window used below 0", "window_used = -1", "window_used", mysql, checked},
		{"window used above MaxQuota", "window_used = " + over, "window_used", all, nil},
		{"window start NULL", "window_start = NULL", "window_start", nil, all},
		{"a rate limit that is not an integer", "rate_limit = 2.5", "rate_limit", sqlite, nil},
		{"a rate limit that is text", "rate_limit = 'ten'", "rate_limit", sqlite, notSQLite},
		{"credits that are text", "credits_remaining = ''", "credits_remaining", sqlite, notSQLite},
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		read, refused := 0, 0
		for _, tt := range tests {
			name := tt.name + " (" + tt.set + ")"
			nk, err := m.Create(ctx(t), apikeys.CreateParams{Type: apikeys.Private, Name: "corrupt", UserID: "mallory"})
			require.NoError(t, err)
			rec, err := s.Get(ctx(t), nk.ID)
			require.NoError(t, err)
			// Limits and counters a Manager could have written, then the
			// corruption.
			// The counters in the current window and refill interval,
			// both of the longest length, so that no spend rolls them
			// over.
			now, long := time.Now().Unix(), int64(apikeys.MaxQuotaSeconds)
			good := fmt.Sprintf("rate_limit = 10, rate_window_seconds = %d, credits_remaining = 5, refill_amount = 5, "+
				"refill_interval_seconds = %d, window_start = %d, refilled_at = %d", long, long, now-now%long, now)
			for _, set := range []string{good, tt.set} {
				_, err = db.ExecContext(ctx(t), "UPDATE "+quote(db.dialect, s.Table())+" SET "+set+" WHERE id = "+ph(db.dialect, 1), nk.ID)
				if set == good || !slices.Contains(tt.refused, db.dialect) {
					require.NoError(t, err, name)
				}
			}
			switch {
			case slices.Contains(tt.refused, db.dialect):
				refused++
				assert.Error(t, err, "%s: the database took it", name)
			case slices.Contains(tt.read, db.dialect):
				read++
				_, err = s.Get(ctx(t), nk.ID)
				if assert.Error(t, err, "Get with %s", name) {
					assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Get with %s", name)
					assert.ErrorContains(t, err, tt.column, "Get with %s", name)
				}
				_, err = s.List(ctx(t), "mallory", apikeys.ListQuery{Limit: 100})
				assert.Error(t, err, "List with %s", name)
				_, _, err = s.Spend(ctx(t), apikeys.SpendRequest{ID: nk.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
				if assert.Error(t, err, "Spend with %s", name) {
					assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Spend with %s", name)
				}
				_, err = m.Authorize(ctx(t), nk.Value, apikeys.Request{})
				var se *apikeys.StoreError
				assert.True(t, errors.As(err, &se), "Authorize with %s = %v, want a *apikeys.StoreError", name, err)
			default:
				// The database changes the value as it stores it
				// (PostgreSQL and MySQL round 2.5 to an integer).
			}
			_, err = db.ExecContext(ctx(t), "DELETE FROM "+quote(db.dialect, s.Table())+" WHERE id = "+ph(db.dialect, 1), nk.ID)
			require.NoError(t, err)
		}
		require.Positive(t, read)
		if db.dialect != sqlstore.MySQL {
			require.Positive(t, refused, "no CHECK refused anything")
		}
	})
}

// TestSpendArguments: a cost outside 1 to MaxQuota is an error, never
// apikeys.ErrNotFound, and spends nothing.
func TestSpendArguments(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		rec := limitedRecord(t, 10)
		require.NoError(t, s.Create(ctx(t), rec))
		for _, cost := range []int64{0, -1, apikeys.MaxQuota + 1} {
			_, _, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: cost, Now: rec.Usage.RefilledAt})
			require.Error(t, err, "Spend of %d", cost)
			require.NotErrorIs(t, err, apikeys.ErrNotFound, "Spend of %d", cost)
			err = s.Refund(ctx(t), apikeys.RefundRequest{ID: rec.ID, Cost: cost, Version: rec.Version, WindowStart: rec.Usage.WindowStart, RefilledAt: rec.Usage.RefilledAt})
			require.Error(t, err, "Refund of %d", cost)
		}
		got, err := s.Get(ctx(t), rec.ID)
		require.NoError(t, err)
		requireSame(t, rec, got)
	})
}

// TestSpendWithoutLimitsTakesNoLock: authorizing a key without limits
// must cost a read, not a write: Spend of such a key returns while
// another transaction holds the row (PostgreSQL, MySQL: SELECT ... FOR
// UPDATE) or the database's write lock (SQLite: BEGIN IMMEDIATE). A Spend
// that tried to lock would wait for the holder, which waits for it, until
// its context (or SQLite's busy timeout) ends it with an error.
func TestSpendWithoutLimitsTakesNoLock(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		rec := testRecord(t, "lock-user")
		require.NoError(t, s.Create(ctx(t), rec))

		conn, err := db.Connx(ctx(t))
		require.NoError(t, err)
		defer conn.Close()
		if db.dialect == sqlstore.SQLite {
			_, err = conn.ExecContext(ctx(t), "BEGIN IMMEDIATE")
			require.NoError(t, err)
		} else {
			_, err = conn.ExecContext(ctx(t), "BEGIN")
			require.NoError(t, err)
			var id string
			require.NoError(t, conn.QueryRowxContext(ctx(t),
				"SELECT CAST(id AS CHAR(36)) FROM "+quote(db.dialect, s.Table())+" WHERE id = "+ph(db.dialect, 1)+" FOR UPDATE", rec.ID).Scan(&id))
		}
		defer func() {
			_, err := conn.ExecContext(context.Background(), "ROLLBACK")
			assert.NoError(t, err)
		}()

		// A guard against a Spend that waits, not a timing.
		c, cancel := context.WithTimeout(ctx(t), 15*time.Second)
		defer cancel()
		got, ok, err := s.Spend(c, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
		require.NoError(t, err, "Spend of a key without limits while its row is locked")
		require.False(t, ok)
		requireSame(t, rec, got)
	})
}

// TestSpendWaitsForConcurrentWriter: a spend that finds the row being
// written by another transaction (another instance's spends, not yet
// committed, that use up the limit) waits for it and decides on the row
// as that transaction left it, not on the version it read before: it is
// refused, and the window holds exactly the limit. This is what makes
// concurrent spends exact on PostgreSQL (the UPDATE's WHERE is evaluated
// again on the latest row version after the lock wait) and on MySQL (the
// UPDATE's locking read; the SELECT before it saw the old version). SQLite
// has one writer at a time, and no way to see that a statement waits.
func TestSpendWaitsForConcurrentWriter(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		if db.dialect == sqlstore.SQLite {
			t.Skip("SQLite: one writer at a time")
		}
		s := migratedStore(t, db.DB)
		rec := limitedRecord(t, 3)
		require.NoError(t, s.Create(ctx(t), rec))
		table := quote(db.dialect, s.Table())

		tx, err := db.BeginTxx(ctx(t), nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		var holder int64
		self := map[sqlstore.Dialect]string{sqlstore.Postgres: "SELECT pg_backend_pid()", sqlstore.MySQL: "SELECT CONNECTION_ID()"}[db.dialect]
		require.NoError(t, tx.QueryRowxContext(ctx(t), self).Scan(&holder))
		_, err = tx.ExecContext(ctx(t), "UPDATE "+table+" SET window_used = 3 WHERE id = "+ph(db.dialect, 1), rec.ID)
		require.NoError(t, err)

		type result struct {
			rec apikeys.Record
			ok  bool
			err error
		}
		done := make(chan result, 1)
		go func() {
			got, ok, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: rec.Usage.RefilledAt})
			done <- result{got, ok, err}
		}()
		// Wait until the spend waits for the holder's lock (PostgreSQL), or
		// runs its UPDATE, its SELECT done (MySQL: InnoDB's lock-wait
		// tables are a cache that is not refreshed while it is read more
		// often than every 100ms, which a loop without sleeps does).
		waiting := map[sqlstore.Dialect]string{
			sqlstore.Postgres: "SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
			sqlstore.MySQL:    "SELECT COUNT(*) FROM information_schema.processlist WHERE id <> ? AND info LIKE CONCAT('UPDATE ', ?, ' %')",
		}[db.dialect]
		args := map[sqlstore.Dialect][]any{sqlstore.Postgres: {holder}, sqlstore.MySQL: {holder, table}}[db.dialect]
		for blocked := 0; blocked == 0; {
			select {
			case r := <-done:
				t.Fatalf("Spend returned (spent %v, %v) while another transaction held the row", r.ok, r.err)
			default:
			}
			require.NoError(t, db.QueryRowxContext(ctx(t), waiting, args...).Scan(&blocked))
		}
		require.NoError(t, tx.Commit())

		r := <-done
		require.NoError(t, r.err)
		assert.False(t, r.ok, "spent past the limit: the charge was decided on the row before the concurrent write")
		got, err := s.Get(ctx(t), rec.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(3), got.Usage.WindowUsed, "window used")
		assert.Equal(t, rec.Credits.Remaining, got.Credits.Remaining, "credits")
	})
}

// queryCounter counts the queries a pgx connection sends: with the
// extended protocol each is one round trip.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (*queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestPostgresSpendIsOneQuery: on PostgreSQL, Spend is one query (one
// round trip) whatever the key, as is Authorize without a cache, limited
// key or not; Refund is one too.
func TestPostgresSpendIsOneQuery(t *testing.T) {
	t.Parallel()
	dsn := targets[1].dsn(t)
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	counter := new(queryCounter)
	cfg.Tracer = counter
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	s := migratedStore(t, db)
	m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	c := ctx(t)

	plain, err := m.Create(c, apikeys.CreateParams{Type: apikeys.Private, Name: "plain", UserID: "rt-user"})
	require.NoError(t, err)
	limited, err := m.Create(c, apikeys.CreateParams{Type: apikeys.Private, Name: "limited", UserID: "rt-user"})
	require.NoError(t, err)
	lrec, err := s.Get(c, limited.ID)
	require.NoError(t, err)
	lrec.RateLimit = &apikeys.RateLimit{Limit: 5, WindowSeconds: 3600}
	lrec.Version++
	require.NoError(t, s.Update(c, lrec))
	prec, err := s.Get(c, plain.ID)
	require.NoError(t, err)
	now := time.Now().Unix()
	spendOf := func(rec apikeys.Record) func() error {
		return func() error {
			_, _, err := s.Spend(c, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: now})
			return err
		}
	}
	wrong := lrec
	wrong.Digest[0] ^= 1
	missing := lrec
	missing.ID = apikeysID(t)
	authorize := func(nk apikeys.NewKey) func() error {
		return func() error { _, err := m.Authorize(c, nk.Value, apikeys.Request{}); return err }
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Spend without limits", spendOf(prec)},
		{"Spend, spent", spendOf(lrec)},
		{"Spend with another digest", spendOf(wrong)},
		{"Spend of a missing key", func() error {
			if err := spendOf(missing)(); !errors.Is(err, apikeys.ErrNotFound) {
				return fmt.Errorf("Spend(missing) = %v", err)
			}
			return nil
		}},
		{"Authorize without limits", authorize(plain)},
		{"Authorize, spent", authorize(limited)},
		{"Spend, refused", func() error {
			if _, ok, err := s.Spend(c, apikeys.SpendRequest{ID: lrec.ID, Digest: lrec.Digest, Cost: 3, Now: now}); err != nil || ok {
				return fmt.Errorf("Spend past the limit = %v, %v", ok, err)
			}
			return nil
		}},
		{"Refund", func() error {
			return s.Refund(c, apikeys.RefundRequest{ID: lrec.ID, Cost: 1, WindowStart: now - now%3600, RefilledAt: 0})
		}},
	}
	for _, tt := range tests {
		require.NoError(t, tt.call(), "%s, preparing", tt.name) // the first call also prepares
		before := counter.n.Load()
		require.NoError(t, tt.call(), tt.name)
		assert.Equal(t, int64(1), counter.n.Load()-before, "%s: queries", tt.name)
	}
}

// TestPostgresAsyncSpendStaysInItsTransaction: Spend and Refund commit
// asynchronously by setting synchronous_commit for their own transaction
// only. Were it set for the session, every later write on that pooled
// connection (a Delete that revokes a key, say) would commit without
// waiting for the disk too.
func TestPostgresAsyncSpendStaysInItsTransaction(t *testing.T) {
	t.Parallel()
	db := sqlx.MustOpen("pgx", targets[1].dsn(t))
	db.SetMaxOpenConns(1) // the store's statements and SHOW share one session
	t.Cleanup(func() { db.Close() })
	s := migratedStore(t, db)
	var before string
	require.NoError(t, db.GetContext(ctx(t), &before, "SHOW synchronous_commit"))
	require.NotEqual(t, "off", before, "the server's default")
	rec := limitedRecord(t, 10)
	require.NoError(t, s.Create(ctx(t), rec))
	for range 2 {
		got, ok, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: rec.Usage.RefilledAt})
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Refund(ctx(t), apikeys.RefundRequest{ID: rec.ID, Cost: 1, Version: got.Version, WindowStart: got.Usage.WindowStart, RefilledAt: got.Usage.RefilledAt}))
	}
	var after string
	require.NoError(t, db.GetContext(ctx(t), &after, "SHOW synchronous_commit"))
	require.Equal(t, before, after, "synchronous_commit of the session after Spend and Refund")
	got, err := s.Get(ctx(t), rec.ID)
	require.NoError(t, err)
	require.Zero(t, got.Usage.WindowUsed, "spent twice, refunded twice")
}
