package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// errNoPgx: LISTEN needs a *pgx.Conn, which only the pgx driver has.
var errNoPgx = errors.New("sqlstore: subscribe: PostgreSQL notifications need the pgx driver (github.com/jackc/pgx/v5/stdlib); " +
	"without it other instances drop changed keys within their cache TTL")

// pgxConner is what pgx's database/sql driver connection (*stdlib.Conn)
// offers to reach the pgx connection under it.
type pgxConner interface{ Conn() *pgx.Conn }

// listen is Subscribe on PostgreSQL: LISTEN on a connection of its own,
// reopened after every failure until ctx is done.
func (s *Store) listen(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	var b backoff
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, onChange, onReset, &b)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errNoPgx) {
			return err
		}
		onReset() // the connection failed, or never came up
		b.wait(ctx)
	}
	return nil
}

// listenOnce opens the listening connection, calls onReset once it
// listens, and delivers notifications until the connection fails (the
// error) or ctx is done.
func (s *Store) listenOnce(ctx context.Context, onChange func(uuid.UUID), onReset func(), b *backoff) error {
	conn, err := s.listenConn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Bounded: on a connection that no longer answers, Close must not
		// wait for the server's goodbye.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	lctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
	_, err = conn.Exec(lctx, listenStatement(s.inv.channel))
	cancel()
	if err != nil {
		return fmt.Errorf("sqlstore: listen: %w", err)
	}
	onReset() // listening: forget what may have been missed before
	b.reset()
	for {
		wctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
		n, err := conn.WaitForNotification(wctx)
		idle := wctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			if n == nil {
				continue // pgx delivers one with every nil error; never a nil dereference
			}
			if id, perr := uuid.Parse(n.Payload); perr == nil {
				onChange(id)
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !idle:
			return fmt.Errorf("sqlstore: listen: %w", err)
		}
		// Nothing for a while: make sure the server still answers. A
		// notification that arrives meanwhile is kept by pgx for the next
		// WaitForNotification.
		pctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sqlstore: listen: ping: %w", err)
		}
	}
}

// listenConn opens a pgx connection with the configuration of a
// connection of the store's pool, taken afresh each time so that what a
// driver hook changes (a rotated password) is followed. The connection is
// not the pool's: holding a pooled connection for good would take it from
// the store's own work (all of it, under SetMaxOpenConns(1)) and return it
// with LISTEN still active.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*s.inv.liveness)
	defer cancel()
	sc, err := s.db.Conn(cctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listen: %w", err)
	}
	var cfg *pgx.ConnConfig
	err = sc.Raw(func(dc any) error {
		pc, ok := dc.(pgxConner)
		if !ok {
			return errNoPgx
		}
		cfg = pc.Conn().Config() // a copy
		return nil
	})
	_ = sc.Close()
	if err != nil {
		return nil, err
	}
	// pgx keeps notifications for WaitForNotification only when no other
	// handler is set; and a wait that times out must only end the wait
	// (a deadline), not send the server a cancel request each time.
	cfg.OnNotification = nil
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listen: %w", err)
	}
	return conn, nil
}
