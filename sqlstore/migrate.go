package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"
)

// Migrate creates the keys table and its index, or brings them up to the
// schema version this package knows, and records each applied version in
// "<table>_schema_versions". It is idempotent and safe to run from several
// goroutines or processes at once: the work is serialized by a lock held
// for its duration (PostgreSQL: pg_advisory_xact_lock in the migration's
// transaction; MySQL: GET_LOCK on one connection; SQLite: BEGIN
// IMMEDIATE, which needs a busy timeout on the connection to wait rather
// than fail). On PostgreSQL and SQLite a failed migration leaves nothing
// behind; MySQL commits DDL as it goes, so each migration is written to be
// safely re-run.
//
// Version 2 adds the nullable successor_id column to a version-1 table,
// keeping every row (their SuccessorID reads as zero). Version 4 adds
// scopes, allowed_ips and disabled with defaults, keeping every row (each
// reads as an enabled key with no scopes and no addresses). Version 5
// adds the rate-limit, credit and counter columns, nullable or with
// defaults, keeping every row (each reads as a key without limits). The
// statements of this package name the columns, so run Migrate before the
// Stores of this version serve; Stores of the previous versions name
// their columns too and keep working on the upgraded table.
//
// Migrate refuses a table whose recorded schema version is newer than the
// latest this code knows (a newer release has migrated it): it changes
// nothing and returns a *SchemaError that wraps ErrSchemaTooNew and names
// both versions. Once Migrate returns nil, the table is at exactly this
// code's version. To check the version without migrating, as instances
// that leave migrations to a deploy step do, use CheckSchema.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, math.MaxInt64)
}

// migrate applies the migrations up to and including version upTo.
func (s *Store) migrate(ctx context.Context, upTo int64) error {
	var err error
	switch s.d.name {
	case Postgres:
		err = s.migratePostgres(ctx, upTo)
	case MySQL:
		err = s.migrateMySQL(ctx, upTo)
	case SQLite:
		err = s.migrateSQLite(ctx, upTo)
	}
	var se *SchemaError
	if errors.As(err, &se) {
		return se // it names the table
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s: %w", s.table, err)
	}
	return nil
}

// ErrSchemaTooNew and ErrSchemaTooOld tell why the schema version of a
// table is not the one this code expects. A *SchemaError wraps one of
// them.
var (
	// ErrSchemaTooNew: a newer release of this package has migrated the
	// table. Migrate refuses it, changing nothing, and CheckSchema reports
	// it: run the newer release. (Whether this release still works on the
	// newer schema is for that release's notes to say; its statements
	// name their columns, so an added column alone does not break it.)
	ErrSchemaTooNew = errors.New("sqlstore: schema is newer than this code")
	// ErrSchemaTooOld: the table lacks a migration of this release, or
	// does not exist: run Migrate (or apply the missing schema files and
	// record them).
	ErrSchemaTooOld = errors.New("sqlstore: schema is older than this code")
)

// SchemaError reports a table whose schema version is not the one this
// code expects. It wraps ErrSchemaTooNew or ErrSchemaTooOld.
type SchemaError struct {
	Table string
	// Database is the schema version of the table: the highest version
	// recorded in "<table>_schema_versions" when that is newer than Code,
	// else the highest version up to which every migration of this code
	// is recorded (0: none, or no versions table).
	Database int64
	// Code is the latest schema version this code knows.
	Code int64
	Err  error // ErrSchemaTooNew or ErrSchemaTooOld
}

func (e *SchemaError) Error() string {
	switch e.Err {
	case ErrSchemaTooNew:
		return fmt.Sprintf("sqlstore: table %s: schema version %d is newer than this code's version %d; run a release that knows version %d",
			e.Table, e.Database, e.Code, e.Database)
	case ErrSchemaTooOld:
		return fmt.Sprintf("sqlstore: table %s: schema version %d is older than this code's version %d; run Migrate",
			e.Table, e.Database, e.Code)
	}
	return fmt.Sprintf("sqlstore: table %s: schema version %d, this code's version %d: %v", e.Table, e.Database, e.Code, e.Err)
}

func (e *SchemaError) Unwrap() error { return e.Err }

// latestVersion is the latest schema version of the dialect's migrations.
func (s *Store) latestVersion() int64 {
	ms := migrations[s.d.name]
	return ms[len(ms)-1].version
}

// schemaState compares the recorded versions with the migrations this code
// knows: a *SchemaError when a recorded version is newer than all of them,
// or (when exact) when one of them is not recorded.
func (s *Store) schemaState(applied map[int64]bool, exact bool) error {
	code := s.latestVersion()
	newest := int64(0)
	for v := range applied {
		newest = max(newest, v)
	}
	if newest > code {
		return &SchemaError{Table: s.table, Database: newest, Code: code, Err: ErrSchemaTooNew}
	}
	if !exact {
		return nil
	}
	var complete int64 // every migration up to it is recorded
	for _, m := range migrations[s.d.name] {
		if !applied[m.version] {
			return &SchemaError{Table: s.table, Database: complete, Code: code, Err: ErrSchemaTooOld}
		}
		complete = m.version
	}
	return nil
}

// CheckSchema reports whether the table is at exactly the schema version
// this code expects, as recorded by Migrate in "<table>_schema_versions":
// nil when it is, else a *SchemaError wrapping ErrSchemaTooNew or
// ErrSchemaTooOld (a missing table is too old), or the database's error.
// It only reads. Call it when a service starts, if migrations run
// elsewhere (a deploy step, another tool): a Store on an older schema
// fails at its first statement that names a missing column, and one on a
// newer schema may miss what the newer release relies on. Migrate checks
// the same, so a service that runs Migrate at start needs no CheckSchema.
// (New does not check: it takes no context and does not touch the
// database.) Users who apply Schema themselves, without Migrate, record
// each version they apply in the versions table to use it.
func (s *Store) CheckSchema(ctx context.Context) error {
	applied, err := s.appliedVersions(ctx, s.db, true)
	if err != nil {
		return fmt.Errorf("sqlstore: check schema of %s: %w", s.table, err)
	}
	return s.schemaState(applied, true)
}

// execQuerier is what a migration runs on (a *sql.Tx or a *sql.Conn), or
// a schema check (the *sqlx.DB).
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersions reads the recorded schema versions. When mayBeMissing
// and the versions table does not exist, it returns none.
func (s *Store) appliedVersions(ctx context.Context, ex execQuerier, mayBeMissing bool) (map[int64]bool, error) {
	rows, err := ex.QueryContext(ctx, "SELECT version FROM "+s.n.Versions)
	if err != nil {
		if mayBeMissing && ctx.Err() == nil {
			// Tell a missing table from a failure by the catalog, not by
			// the drivers' error texts.
			var n int
			cerr := ex.QueryRowContext(ctx, s.d.rebind(s.d.tableExists), s.n.TableName+"_schema_versions").Scan(&n)
			if cerr == nil && n == 0 {
				return map[int64]bool{}, nil
			}
		}
		return nil, err
	}
	applied := make(map[int64]bool)
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		applied[v] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	return applied, nil
}

// apply runs the migrations up to upTo not yet recorded, under the
// caller's lock. It applies none when the table is newer than this code.
func (s *Store) apply(ctx context.Context, ex execQuerier, upTo int64) error {
	if _, err := ex.ExecContext(ctx, fmt.Sprintf(s.d.versionsDDL, s.n.Versions)); err != nil {
		return err
	}
	applied, err := s.appliedVersions(ctx, ex, false)
	if err != nil {
		return err
	}
	if err := s.schemaState(applied, false); err != nil {
		return err
	}
	record := s.d.rebind("INSERT INTO " + s.n.Versions + " (version, applied_at) VALUES (?, ?)")
	for _, m := range migrations[s.d.name] {
		if m.version > upTo {
			break
		}
		if applied[m.version] {
			continue
		}
		for _, q := range statements(m.render(s.n)) {
			if _, err := ex.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("version %d: %w", m.version, err)
			}
		}
		if _, err := ex.ExecContext(ctx, record, m.version, s.d.timeArg(time.Now())); err != nil {
			return fmt.Errorf("version %d: %w", m.version, err)
		}
	}
	return nil
}

// lockName names the migration lock of the table.
func (s *Store) lockName() string { return "apikeys_sqlstore:" + s.table }

func (s *Store) migratePostgres(ctx context.Context, upTo int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	h := fnv.New64a()
	h.Write([]byte(s.lockName()))
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return err
	}
	if err := s.apply(ctx, tx, upTo); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) migrateMySQL(ctx context.Context, upTo int64) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// GET_LOCK waits on the server; a cancelled ctx makes the driver drop
	// the connection, which releases the wait and any lock it held.
	wait := int64(24 * time.Hour / time.Second)
	if dl, ok := ctx.Deadline(); ok {
		wait = max(1, int64(math.Ceil(time.Until(dl).Seconds())))
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", s.lockName(), wait).Scan(&got); err != nil {
		return err
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("timed out after %ds waiting for lock %q", wait, s.lockName())
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released sql.NullInt64
		rerr := conn.QueryRowContext(rctx, "SELECT RELEASE_LOCK(?)", s.lockName()).Scan(&released)
		if rerr == nil && released.Int64 != 1 {
			rerr = fmt.Errorf("RELEASE_LOCK(%q) = %v", s.lockName(), released)
		}
		if rerr != nil {
			// Never return a connection that may still hold the lock to
			// the pool: closing it releases the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("releasing the migration lock: %w", rerr)
			}
		}
	}()
	return s.apply(ctx, conn, upTo)
}

func (s *Store) migrateSQLite(ctx context.Context, upTo int64) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// database/sql's BeginTx would issue a deferred BEGIN, whose first
	// write can fail with SQLITE_BUSY instead of waiting; BEGIN IMMEDIATE
	// takes the write lock up front, waiting up to the busy timeout.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := s.apply(ctx, conn, upTo); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return err
	}
	return nil
}
