// Package sqlstore is an apikeys.Store on github.com/jmoiron/sqlx for
// PostgreSQL, MySQL/MariaDB and SQLite.
//
// The package imports no driver. Blank-import one and open it with sqlx;
// the dialect follows the driver name:
//
//	PostgreSQL      github.com/jackc/pgx/v5/stdlib ("pgx", "pgx/v5") or lib/pq ("postgres")
//	MySQL, MariaDB  github.com/go-sql-driver/mysql ("mysql")
//	SQLite          modernc.org/sqlite ("sqlite") or mattn/go-sqlite3 ("sqlite3")
//
// A driver registered under another name (an instrumenting wrapper, say)
// is used by setting Config.Dialect. (The package does import pgx's core,
// github.com/jackc/pgx/v5, not its database/sql driver, to LISTEN on
// PostgreSQL: see Invalidation.)
//
// # Schema
//
// One table (Config.Table, default "api_keys") with one row per key, and
// one index on (user_id, id). Migrate creates them and records the applied
// schema versions in "<table>_schema_versions"; Schema returns the same DDL
// for users who run their own migrations. The schema files are embedded
// from schema/<dialect>/NNNN_*.sql: version 1 creates the table, version 2
// adds successor_id, version 3 creates the change log "<table>_changes" on
// MySQL and SQLite (see Invalidation; nothing on PostgreSQL, where the
// version only keeps the numbers aligned), version 4 adds scopes,
// allowed_ips and disabled, version 5 the rate limit, credits and their
// counters. Users who run their own migrations apply the files above the version they have; Schema's whole
// text can be run again on an existing table on PostgreSQL and MySQL (each
// statement is conditional), not on SQLite, which has no ADD COLUMN IF NOT
// EXISTS.
//
//   - id is the primary key: native UUID on PostgreSQL, the canonical
//     lower-case UUID text elsewhere (CHAR(36) ascii_bin on MySQL). Ids are
//     UUIDv7, so the order of either is creation order, and a listing is
//     keyset pagination on the (user_id, id) index:
//     WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?, whose cost
//     grows with the page, not with the user's keys.
//   - allowed_origins and allowed_assistants are JSON arrays of strings in
//     the row itself (JSONB, JSON, TEXT), not child tables: Authorize reads
//     a key with one primary-key lookup of one row and no join, an update
//     rewrites one row under one version check, and the lists are bounded
//     by the Manager (100 origins, 1000 assistants by default) and never
//     queried by element.
//   - digest is the 32-byte SHA-256 or HMAC-SHA-256 of the key value
//     (BYTEA, BINARY(32), BLOB). No column ever holds a key value.
//   - Times are UTC at microsecond precision (finer input is truncated,
//     as the Manager does): TIMESTAMPTZ on PostgreSQL,
//     DATETIME(6) written as UTC text on MySQL (so neither the DSN's loc nor
//     the session time_zone shifts them), INTEGER Unix microseconds on
//     SQLite. expires_at and last_used_at are NULL when zero.
//   - version is the optimistic-concurrency counter of apikeys.Record.
//   - successor_id (schema version 2) is apikeys.Key.SuccessorID, stored
//     like id, and NULL when zero. Migrate adds it to a version-1 table and
//     keeps the rows, which read with the zero SuccessorID.
//   - scopes and allowed_ips (schema version 4) are apikeys.Key.Scopes and
//     AllowedIPs, JSON arrays of strings like allowed_origins (JSONB,
//     JSON, TEXT; NOT NULL DEFAULT '[]'), the addresses as the canonical
//     prefixes the Manager keeps ("203.0.113.0/24", "2001:db8::7/128").
//     disabled (version 4) is apikeys.Key.Disabled: BOOLEAN NOT NULL
//     DEFAULT FALSE (TINYINT(1) on MySQL, INTEGER 0 or 1 on SQLite).
//     Migrate adds them to an older table and keeps the rows, which read
//     as enabled keys with no scopes and no addresses, as they were; the
//     defaults also let Stores of version 3, still running during an
//     upgrade, insert keys, and their Updates, which do not name the new
//     columns, leave them as they are (they cannot switch a key back on).
//     These columns fail closed: NULL, a value that is not a JSON array
//     of strings, an address that is not a canonical prefix, or a
//     disabled that is not true or false (1 or 0) makes the row an error,
//     never apikeys.ErrNotFound and never a key without the restriction.
//     (Scope entries are not checked against the scope grammar: an entry
//     that is not a scope matches no request, which only narrows the
//     key.)
//   - The limits (schema version 5) are apikeys.Key.RateLimit, Credits
//     and Usage, in BIGINT columns (INTEGER on SQLite): rate_limit and
//     rate_window_seconds, both NULL for a key without a rate limit;
//     credits_remaining, NULL for a key without credits; refill_amount and
//     refill_interval_seconds, both NULL for credits without a refill; and
//     the counters window_start, window_used and refilled_at (Unix
//     seconds; NOT NULL DEFAULT 0). Migrate adds them to an older table
//     and keeps the rows, which read as keys without limits, as they were;
//     Stores of version 4 still running during an upgrade insert keys
//     without limits and their Updates leave the limits as they are, but
//     they authorize with Get, so they do not spend: roll the upgrade out
//     before giving keys limits. CHECK constraints (PostgreSQL, SQLite;
//     not MySQL, where adding one copies the table) refuse half a rate
//     limit or refill, a refill without credits, and counts below their
//     least. The columns fail closed as those of version 4 do: a value
//     out of range (apikeys.MaxQuota, MaxQuotaSeconds), half a pair, a
//     refill without credits, or a value that is not an integer makes the
//     row an error, never a key without limits.
//   - On MySQL user_id is VARBINARY(255) so that tenants compare byte for
//     byte: a case-insensitive or space-padding collation would let one
//     user's id match another's.
//
// The schema version is checked, not assumed: Migrate refuses a table
// that a newer release has migrated (a version it does not know is
// recorded), changing nothing, with a *SchemaError wrapping
// ErrSchemaTooNew; and CheckSchema tells a Store that does not migrate
// whether the table is at exactly its version (nil), older
// (ErrSchemaTooOld: run Migrate) or newer (ErrSchemaTooNew). New does not
// check: it takes no context and does not touch the database, so call
// Migrate or CheckSchema when a service starts. Both read the versions
// table Migrate keeps; users who apply Schema themselves record there the
// versions they apply.
//
// # Queries
//
// Every query is a constant string with placeholders, rebound for the
// dialect, and runs with the caller's context. The statements are prepared
// once per Store on first use (database/sql re-prepares them on each pooled
// connection as needed) and released by Close; the exception is the
// last-used statement of MySQL and SQLite, which repeats its placeholders
// once per use and is sent unprepared. Get is one primary-key
// SELECT. Update is one UPDATE ... WHERE id = ? AND user_id = ? AND
// version = ?; when it changes no row, a SELECT by id tells a missing or
// foreign record (apikeys.ErrNotFound) from a stale version
// (apikeys.ErrConflict). It sets last_used_at to the later of the stored
// and the written value (GREATEST, or its NULL-safe equivalent), so an
// Update never undoes a last-used flush that came after its read; it
// keeps the counters that Spend and Refund change (window_start and
// window_used always, credits_remaining and refilled_at unless
// apikeys.Record.SetCredits) in the same statement. Delete
// is one DELETE. Create maps the driver's unique-violation error to
// apikeys.ErrDuplicate. Every other failure is returned wrapped with %w
// and is never apikeys.ErrNotFound.
//
// Spend applies apikeys.Key.Charge in SQL, in the WHERE and SET of one
// UPDATE evaluated on the latest version of the row under its lock, so
// that instances spending from one key at once are exact. PostgreSQL: one
// statement, one round trip, for every key (an UPDATE ... RETURNING in a
// WITH, and a SELECT of the row when the UPDATE wrote nothing); a key
// without limits takes no row lock, and a spend commits asynchronously
// unless Config.SyncSpends (its disk flush would otherwise cost more than
// the rest of the request). SQLite: a SELECT, then the UPDATE ...
// RETURNING (SQLite 3.35 or later) for a limited key the read lets spend,
// so that a key without limits never takes the write lock. MySQL: a SELECT, then the UPDATE for
// a limited key the read lets spend, which also checks that the row is
// still the version read; the record returned is the one read, charged by
// Key.Charge (see Store.Spend for what it does not show). A key without
// limits costs one round trip that writes nothing everywhere, as Get does
// (on MySQL and SQLite the very SELECT of Get). Refund is one UPDATE.
// Neither changes the version or last_used_at, nor publishes: counters
// are not cached.
//
// TouchLastUsed writes a batch of uses with one statement per 500 uses,
// each its own short transaction, sorted by id, and never moves
// last_used_at back: PostgreSQL UPDATE ... FROM unnest of two arrays,
// after locking the rows with SELECT ... ORDER BY id FOR UPDATE; MySQL a
// single-table UPDATE ... SET last_used_at = CASE id ... ORDER BY id;
// SQLite UPDATE ... FROM (VALUES ...) (SQLite 3.33 or later). Each locks
// its rows in id order, so instances flushing the same keys at once wait
// for each other and never deadlock.
//
// # Invalidation
//
// A Store is also an apikeys.Invalidator, on every dialect: give it to the
// Managers that share the table, with their caches, and a key changed or
// deleted through one Manager is dropped from the others' caches within
// milliseconds (PostgreSQL) or a poll interval (MySQL, SQLite), instead of
// within CacheConfig.TTL:
//
//	m, err := apikeys.New(store, &apikeys.Config{
//		Cache:       &apikeys.CacheConfig{},
//		Invalidator: store,
//	})
//
// PostgreSQL: Publish is SELECT pg_notify('apikeys:<table>', id), and
// Subscribe LISTENs on that channel (quoted as written; at most 55 bytes,
// within PostgreSQL's 63) on one connection of its own, outside the pool:
// a pooled connection held for good would be taken from the store's work,
// and would go back to the pool still listening. It opens that connection
// with the configuration of a connection of the pool, read afresh for each
// attempt, so it needs the pgx driver (github.com/jackc/pgx/v5/stdlib);
// with lib/pq Subscribe returns an error at once (the Manager logs it and
// falls back to the TTL), while Publish works with any driver. LISTEN
// needs a session of its own: not through a pooler in transaction mode.
// Liveness: a listening connection that has received nothing for
// Config.LivenessTimeout (default 5s) sends a ping, and one that does not
// answer within as long again is dropped, so a connection that silently
// died is noticed within twice the timeout. Subscribe calls onReset once
// it listens, when the connection fails and when it listens again, and
// retries with a backoff from 50ms doubling to 5s. Tables of the same
// name in several schemas of one database share a channel: each then
// also drops the other's changed keys, which costs a store read, never a
// stale answer.
//
// MySQL and SQLite have no NOTIFY: Publish inserts (seq, key_id,
// created_at) into the change log "<table>_changes" (schema version 3),
// and Subscribe reads the rows with a seq above the highest it has seen
// every Config.PollInterval (default 500ms), through the store's pool. It
// starts from the end of the log (then onReset), and when a read fails or
// takes longer than Config.LivenessTimeout it calls onReset, and again
// once a read succeeds, from the end of the log then. Gaps: an
// AUTO_INCREMENT seq is taken when a row is inserted, not when it
// commits, so a row can appear below one already read. Subscribe keeps
// the seqs missing below the highest it has seen (at most 256, the
// highest) and looks for them again on every poll, for 30s, after which a
// seq is taken for one that will never come (a rolled-back insert, an
// auto_increment_increment above 1); giving a seq up, there or because
// more were missing than it tracks, calls onReset, since a change may
// have gone unseen. Pruning: every subscriber,
// once a minute, deletes the rows older than 10 minutes by the database's
// clock (SQLite: the process's) in batches of 500, at most 20 batches a
// round, always keeping the newest row so that a sequence that a server
// restart recomputes from the table cannot go back; a subscriber that
// could not read for 5 minutes starts again from the end of the log with
// onReset. Every poll also reads again the row at the highest seq it has
// read: when that row is gone or another (an emptied, recreated table,
// even one refilled past that seq), it starts again with onReset. (Pruning
// can remove that row only once newer rows exist, so at worst this costs a
// spurious reset.) Several processes on one
// SQLite file share its log like instances on a server; a single process
// needs no Invalidator at all, the Manager dropping its own changes at
// once.
//
// An instance that does not Publish (an older version, a Manager without
// the Invalidator) leaves the others to their TTL for its changes. End
// Subscribe (close the Manager) before closing the Store.
//
// # Drivers and DSNs
//
// MySQL: add parseTime=true to the DSN (the store also copes without it).
// SQLite: set a busy timeout and WAL, e.g.
// "file:keys.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" for
// modernc.org/sqlite, so that concurrent writers wait for each other
// rather than fail with SQLITE_BUSY.
package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keyward/apikeys"
)

// DefaultTable is the table name used when Config.Table is empty.
const DefaultTable = "api_keys"

// Config configures a Store. A nil *Config and the zero value give the
// defaults.
type Config struct {
	// Table is the keys table: [A-Za-z_][A-Za-z0-9_]*, at most
	// MaxTableLen bytes, quoted in every statement. Migrate also creates
	// "<Table>_schema_versions". Default "api_keys".
	Table string

	// Dialect overrides the dialect New derives from db.DriverName(), for
	// drivers registered under other names. Default: from the driver name.
	Dialect Dialect

	// PollInterval is how often Subscribe reads the change log on MySQL
	// and SQLite, and so about the longest another instance keeps a
	// revoked key after Publish (see "Invalidation" in the package doc).
	// Default 500ms. PostgreSQL does not poll.
	PollInterval time.Duration

	// LivenessTimeout bounds how long Subscribe waits on the database
	// before it takes the channel for failed, resets the cache and
	// reconnects: each change-log read (MySQL, SQLite) and, on
	// PostgreSQL, the listening connection's idle wait (after which it
	// pings) and the ping itself, so a connection that silently stopped
	// answering is noticed within twice this. Connecting gets twice this.
	// Default 5s.
	LivenessTimeout time.Duration

	// SyncSpends makes Spend and Refund on PostgreSQL wait, like every
	// other write, until their commit is flushed to disk (or replicated,
	// as the server's synchronous_commit says). By default they commit
	// asynchronously (synchronous_commit = off for their own transaction
	// only, set in the statement), which takes the disk flush off every
	// request of a limited key: on a crash of the PostgreSQL server (not
	// of a client, and not a lost connection) the spends of about the
	// last 3 x wal_writer_delay (600ms by default) before it can be
	// lost, so a rate limit counts a little less and spent credits come
	// back; the data stays consistent, and instances see each other's
	// spends at once either way. Redis, with its default persistence,
	// loses at least as much. MySQL and SQLite have no per-transaction
	// setting: their spends are as durable as the server's
	// innodb_flush_log_at_trx_commit or the connection's PRAGMA
	// synchronous make every write.
	SyncSpends bool
}

// Store is an apikeys.Store in an SQL table. It is safe for concurrent
// use. Close it to release its prepared statements; it does not close the
// *sqlx.DB.
type Store struct {
	db    *sqlx.DB
	d     *dialect
	table string
	n     names

	get, listFirst, listBefore, insert, update, owner, del *stmt
	// charge and refund are Spend's and Refund's statements (limits.go).
	charge, refund namedStmt
	// touch is the prepared TouchLastUsed statement of a dialect whose
	// statement text does not depend on the number of uses; nil for the
	// others, whose statements are sent unprepared.
	touch  *stmt
	stmts  []*stmt
	closed atomic.Bool

	bufs sync.Pool // of *scanBuf

	inv invalidation // Publish and Subscribe (invalidate.go)
}

var _ apikeys.Store = (*Store)(nil)

// columns is the order in which every statement reads and writes a record.
const columns = "id, user_id, key_type, name, allowed_origins, allowed_assistants, transient_assistant, " +
	"user_email, hint, digest, created_at, updated_at, expires_at, last_used_at, version, successor_id, " +
	"scopes, allowed_ips, disabled, " + limitColumns

// New returns a Store on db. It does not touch the database: call Migrate
// (or apply Schema yourself) before using the Store.
func New(db *sqlx.DB, cfg *Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: nil *sqlx.DB")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if !validTable(c.Table) {
		return nil, fmt.Errorf("sqlstore: New: %w", errBadTable(c.Table))
	}
	name := c.Dialect
	if name == "" {
		var ok bool
		if name, ok = dialectOf(db.DriverName()); !ok {
			return nil, fmt.Errorf(`sqlstore: New: unsupported driver %q: want "pgx", "pgx/v5" or "postgres" (PostgreSQL), "mysql" (MySQL, MariaDB), "sqlite" or "sqlite3" (SQLite), or set Config.Dialect`, db.DriverName())
		}
	}
	d, ok := dialects[name]
	if !ok {
		return nil, fmt.Errorf("sqlstore: New: unknown Config.Dialect %q (want %q, %q or %q)", name, Postgres, MySQL, SQLite)
	}
	s := &Store{db: db, d: d, table: c.Table, n: namesFor(d, c.Table)}
	s.bufs.New = func() any { return s.newScanBuf() }
	t := s.n.Table
	mk := func(q string) *stmt {
		st := &stmt{db: db, text: d.rebind(q), lock: make(chan struct{}, 1)}
		s.stmts = append(s.stmts, st)
		return st
	}
	s.get = mk("SELECT " + columns + " FROM " + t + " WHERE id = ?")
	s.listFirst = mk("SELECT " + columns + " FROM " + t + " WHERE user_id = ? ORDER BY id DESC LIMIT ?")
	s.listBefore = mk("SELECT " + columns + " FROM " + t + " WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?")
	s.insert = mk("INSERT INTO " + t + " (" + columns + ") VALUES (?" + strings.Repeat(", ?", strings.Count(columns, ",")) + ")")
	// The counters are Update's exception (see apikeys.Store.Update):
	// window_start and window_used are never written, credits_remaining
	// and refilled_at only with SetCredits (credits_remaining also when
	// the record had no credits, or has none now).
	s.update = mk("UPDATE " + t + " SET key_type = ?, name = ?, allowed_origins = ?, allowed_assistants = ?, " +
		"transient_assistant = ?, user_email = ?, hint = ?, digest = ?, created_at = ?, updated_at = ?, " +
		"expires_at = ?, last_used_at = " + d.laterLastUsed + ", version = ?, successor_id = ?, " +
		"scopes = ?, allowed_ips = ?, disabled = ?, " +
		"rate_limit = ?, rate_window_seconds = ?, refill_amount = ?, refill_interval_seconds = ?, " +
		"credits_remaining = CASE WHEN ? AND credits_remaining IS NOT NULL THEN credits_remaining ELSE ? END, " +
		"refilled_at = CASE WHEN ? THEN refilled_at ELSE ? END " +
		"WHERE id = ? AND user_id = ? AND version = ?")
	mkNamed := func(q string, names []string) namedStmt {
		text, order := bindNamed(d.name, q, names)
		return namedStmt{mk(text), order}
	}
	s.charge = mkNamed(chargeSQL(d.name, t, !c.SyncSpends))
	s.refund = mkNamed(refundSQL(d.name, t, !c.SyncSpends))
	s.owner = mk("SELECT user_id FROM " + t + " WHERE id = ?")
	s.del = mk("DELETE FROM " + t + " WHERE id = ? AND user_id = ?")
	if d.touchFixed {
		s.touch = mk(d.touchSQL(s.n, maxTouch))
	}
	if err := s.initInvalidation(&c, mk); err != nil {
		return nil, fmt.Errorf("sqlstore: New: %w", err)
	}
	return s, nil
}

// Dialect returns the store's dialect.
func (s *Store) Dialect() Dialect { return s.d.name }

// Table returns the name of the keys table.
func (s *Store) Table() string { return s.table }

// Schema returns the DDL Migrate applies for this store (see Schema).
func (s *Store) Schema() string {
	text, err := Schema(s.d.name, s.table)
	if err != nil {
		panic(err) // New validated both
	}
	return text
}

// Close releases the store's prepared statements. Later calls fail. It
// does not close the *sqlx.DB.
func (s *Store) Close() error {
	s.closed.Store(true)
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.close())
	}
	return errors.Join(errs...)
}

// errClosed is returned by the methods of a closed Store.
var errClosed = errors.New("sqlstore: store is closed")

// stmt is a statement prepared on first use.
type stmt struct {
	db   *sqlx.DB
	text string

	p atomic.Pointer[sqlx.Stmt]
	// lock (a one-slot semaphore, so that waiting honours the caller's
	// context) guards preparing and closed.
	lock   chan struct{}
	closed bool
}

func (st *stmt) prepared(ctx context.Context) (*sqlx.Stmt, error) {
	if p := st.p.Load(); p != nil {
		return p, nil
	}
	select {
	case st.lock <- struct{}{}:
		defer func() { <-st.lock }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if st.closed {
		return nil, errClosed
	}
	if p := st.p.Load(); p != nil {
		return p, nil
	}
	p, err := st.db.PreparexContext(ctx, st.text)
	if err != nil {
		return nil, err
	}
	st.p.Store(p)
	return p, nil
}

func (st *stmt) close() error {
	st.lock <- struct{}{}
	defer func() { <-st.lock }()
	st.closed = true
	if p := st.p.Swap(nil); p != nil {
		return p.Close() // later uses of p fail with sql's "statement is closed"
	}
	return nil
}

func (st *stmt) queryRow(ctx context.Context, args ...any) (*sql.Row, error) {
	p, err := st.prepared(ctx)
	if err != nil {
		return nil, err
	}
	return p.QueryRowContext(ctx, args...), nil
}

func (st *stmt) query(ctx context.Context, args ...any) (*sql.Rows, error) {
	p, err := st.prepared(ctx)
	if err != nil {
		return nil, err
	}
	return p.QueryContext(ctx, args...)
}

func (st *stmt) exec(ctx context.Context, args ...any) (sql.Result, error) {
	p, err := st.prepared(ctx)
	if err != nil {
		return nil, err
	}
	return p.ExecContext(ctx, args...)
}

// nullUUID is the argument for a nullable UUID column: NULL for the zero
// UUID, else the UUID as id is written.
func nullUUID(id uuid.UUID) any {
	if id == (uuid.UUID{}) {
		return nil
	}
	return id
}

// nullTime is the argument for a nullable time column.
func (s *Store) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.timeArg(t)
}

// Create implements apikeys.Store.
func (s *Store) Create(ctx context.Context, rec apikeys.Record) error {
	rateLimit, rateWindow, remaining, refillAmount, refillInterval := limitArgs(&rec.Key)
	_, err := s.insert.exec(ctx,
		rec.ID, rec.UserID, string(rec.Type), rec.Name,
		listString(rec.AllowedOrigins), listString(rec.AllowedAssistants), rec.TransientAssistant,
		rec.UserEmail, rec.Hint, rec.Digest[:],
		s.d.timeArg(rec.CreatedAt), s.d.timeArg(rec.UpdatedAt), s.nullTime(rec.ExpiresAt), s.nullTime(rec.LastUsedAt),
		rec.Version, nullUUID(rec.SuccessorID),
		listString(rec.Scopes), prefixListString(rec.AllowedIPs), rec.Disabled,
		rateLimit, rateWindow, remaining, refillAmount, refillInterval,
		rec.Usage.WindowStart, rec.Usage.WindowUsed, rec.Usage.RefilledAt)
	if err != nil {
		if s.d.duplicate(err) {
			return apikeys.ErrDuplicate
		}
		return fmt.Errorf("sqlstore: create: %w", err)
	}
	return nil
}

// Get implements apikeys.Store.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	var rec apikeys.Record
	row, err := s.get.queryRow(ctx, id.String()) // the text uuid.UUID.Value gives, without the driver's Valuer detour
	if err == nil {
		err = s.scan(row, &rec)
	}
	switch {
	case err == nil:
		return rec, nil
	case errors.Is(err, sql.ErrNoRows):
		return apikeys.Record{}, apikeys.ErrNotFound
	default:
		return apikeys.Record{}, fmt.Errorf("sqlstore: get: %w", err)
	}
}

// List implements apikeys.Store.
func (s *Store) List(ctx context.Context, userID string, q apikeys.ListQuery) ([]apikeys.Record, error) {
	if q.Limit < 1 {
		return []apikeys.Record{}, nil
	}
	var rows *sql.Rows
	var err error
	if q.Before == (uuid.UUID{}) {
		rows, err = s.listFirst.query(ctx, userID, q.Limit)
	} else {
		rows, err = s.listBefore.query(ctx, userID, q.Before, q.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer rows.Close()
	out := make([]apikeys.Record, 0, min(q.Limit, 64))
	for rows.Next() {
		var rec apikeys.Record
		if err := s.scan(rows, &rec); err != nil {
			return nil, fmt.Errorf("sqlstore: list: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	return out, nil
}

// Update implements apikeys.Store. last_used_at becomes the later of the
// stored and the written value, and the counters are kept unless
// rec.SetCredits, in the UPDATE itself (see apikeys.Store.Update).
func (s *Store) Update(ctx context.Context, rec apikeys.Record) error {
	var args [32]any
	a := append(args[:0],
		string(rec.Type), rec.Name,
		listString(rec.AllowedOrigins), listString(rec.AllowedAssistants), rec.TransientAssistant,
		rec.UserEmail, rec.Hint, rec.Digest[:],
		s.d.timeArg(rec.CreatedAt), s.d.timeArg(rec.UpdatedAt), s.nullTime(rec.ExpiresAt))
	lastUsed := s.nullTime(rec.LastUsedAt)
	for range s.d.laterLastUsedArgs {
		a = append(a, lastUsed)
	}
	a = append(a, rec.Version, nullUUID(rec.SuccessorID),
		listString(rec.Scopes), prefixListString(rec.AllowedIPs), rec.Disabled)
	rateLimit, rateWindow, remaining, refillAmount, refillInterval := limitArgs(&rec.Key)
	keepRemaining := !rec.SetCredits && rec.Credits != nil
	a = append(a, rateLimit, rateWindow, refillAmount, refillInterval,
		keepRemaining, remaining, !rec.SetCredits, rec.Usage.RefilledAt,
		rec.ID, rec.UserID, rec.Version-1)
	res, err := s.update.exec(ctx, a...)
	if err != nil {
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	// The new version always differs from the old, so a matched row is a
	// changed row even where the driver reports changed rather than found
	// rows (MySQL without clientFoundRows).
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	if n > 0 {
		return nil
	}
	row, err := s.owner.queryRow(ctx, rec.ID)
	var owner string
	if err == nil {
		err = row.Scan(&owner)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikeys.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlstore: update: %w", err)
	case owner != rec.UserID:
		return apikeys.ErrNotFound
	default:
		return apikeys.ErrConflict
	}
}

// Delete implements apikeys.Store.
func (s *Store) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	res, err := s.del.exec(ctx, id, userID)
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	if n == 0 {
		return apikeys.ErrNotFound
	}
	return nil
}

// maxTouch bounds the uses one TouchLastUsed statement writes: at most 5
// placeholders each (MySQL), well below every dialect's limit.
const maxTouch = 500

// TouchLastUsed implements apikeys.Store. It sorts the uses by id, keeps
// the latest of each id, and writes them with one statement per maxTouch
// uses, each its own transaction, which locks its rows in id order: two
// instances flushing the same keys at once wait for each other, row by
// row, and never deadlock (see the dialects' touch statements).
func (s *Store) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: touch: %w", err)
	}
	if len(uses) == 0 {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("sqlstore: touch: %w", errClosed)
	}
	for chunk := range slices.Chunk(latestUses(uses), maxTouch) {
		args := s.d.touchArgs(s.d, chunk)
		var err error
		if s.touch != nil {
			_, err = s.touch.exec(ctx, args...)
		} else {
			_, err = s.db.ExecContext(ctx, s.d.rebind(s.d.touchSQL(s.n, len(chunk))), args...)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: touch: %w", err)
		}
	}
	return nil
}

// latestUses returns the uses sorted by id, with only the latest use of
// each id. It does not modify uses.
func latestUses(uses []apikeys.Use) []apikeys.Use {
	out := slices.Clone(uses)
	slices.SortFunc(out, func(a, b apikeys.Use) int {
		if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
			return c
		}
		return b.At.Compare(a.At) // latest first
	})
	return slices.CompactFunc(out, func(a, b apikeys.Use) bool { return a.ID == b.ID })
}

// scanBuf is a record and the scan destinations that point into it,
// reused through Store.bufs so that reading a row allocates only what the
// record itself holds.
type scanBuf struct {
	rec    apikeys.Record
	limits rawLimits
	spent  bool
	dest   []any // the columns
	// destSpent is dest and spent, for Spend's statement on PostgreSQL.
	destSpent []any
}

func (s *Store) newScanBuf() *scanBuf {
	b := new(scanBuf)
	r := &b.rec
	b.dest = []any{
		&r.ID, &r.UserID, (*string)(&r.Type), &r.Name,
		listScanner{&r.AllowedOrigins}, listScanner{&r.AllowedAssistants}, &r.TransientAssistant,
		&r.UserEmail, &r.Hint, digestScanner{&r.Digest},
		s.timeDest(&r.CreatedAt), s.timeDest(&r.UpdatedAt),
		s.timeDest(&r.ExpiresAt), s.timeDest(&r.LastUsedAt),
		&r.Version, nullUUIDScanner{&r.SuccessorID},
		scopesScanner{&r.Scopes}, prefixListScanner{&r.AllowedIPs}, boolScanner{"disabled", &r.Disabled},
		b.limits.rateLimit.scanner("rate_limit"), b.limits.rateWindow.scanner("rate_window_seconds"),
		b.limits.remaining.scanner("credits_remaining"),
		b.limits.refillAmount.scanner("refill_amount"), b.limits.refillInterval.scanner("refill_interval_seconds"),
		intScanner{"window_start", &r.Usage.WindowStart, nil}, intScanner{"window_used", &r.Usage.WindowUsed, nil},
		intScanner{"refilled_at", &r.Usage.RefilledAt, nil},
	}
	b.destSpent = append(b.dest[:len(b.dest):len(b.dest)], boolScanner{"spent", &b.spent})
	return b
}

// scan reads one row in the order of columns into rec.
func (s *Store) scan(row interface{ Scan(...any) error }, rec *apikeys.Record) error {
	return s.scanSpent(row, rec, nil)
}

// scanSpent reads one row in the order of columns into rec, followed, if
// spent is not nil, by a boolean into spent.
func (s *Store) scanSpent(row interface{ Scan(...any) error }, rec *apikeys.Record, spent *bool) error {
	b := s.bufs.Get().(*scanBuf)
	b.rec, b.limits = apikeys.Record{}, rawLimits{}
	dest := b.dest
	if spent != nil {
		dest = b.destSpent
	}
	err := row.Scan(dest...)
	if err == nil {
		err = decodeLimits(&b.limits, &b.rec.Key)
	}
	if spent != nil {
		*spent = b.spent
	}
	*rec = b.rec // the lists are fresh on every scan: nothing is shared
	b.rec = apikeys.Record{}
	s.bufs.Put(b)
	return err
}

// timeDest is the scan destination of a time column.
func (s *Store) timeDest(t *time.Time) any {
	if s.d.wallClock {
		return wallClockScanner{t}
	}
	return instantScanner{t}
}
