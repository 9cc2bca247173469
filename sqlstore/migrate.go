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
// keeping every row (their SuccessorID reads as zero). The statements of
// this package name the column, so run Migrate before the Stores of this
// version serve; Stores of the previous version name their columns too
// and keep working on the upgraded table.
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
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s: %w", s.table, err)
	}
	return nil
}

// execQuerier is what a migration runs on: a *sql.Tx or a *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// apply runs the migrations up to upTo not yet recorded, under the
// caller's lock.
func (s *Store) apply(ctx context.Context, ex execQuerier, upTo int64) error {
	if _, err := ex.ExecContext(ctx, fmt.Sprintf(s.d.versionsDDL, s.n.Versions)); err != nil {
		return err
	}
	rows, err := ex.QueryContext(ctx, "SELECT version FROM "+s.n.Versions)
	if err != nil {
		return err
	}
	applied := make(map[int64]bool)
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
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
