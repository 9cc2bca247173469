package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyward/apikeys"
)

var _ apikeys.Invalidator = (*Store)(nil)

// Invalidation defaults (see Config).
const (
	defaultPollInterval    = 500 * time.Millisecond
	defaultLivenessTimeout = 5 * time.Second

	// After a failure Subscribe retries after minBackoff, doubling up to
	// maxBackoff while failures go on.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// invalidation is the Store's Publish and Subscribe: LISTEN/NOTIFY on
// PostgreSQL (notify.go), the polled change log elsewhere (changelog.go).
type invalidation struct {
	poll       time.Duration // Config.PollInterval
	liveness   time.Duration // Config.LivenessTimeout
	pruneEvery time.Duration // pruneEvery; tests shorten it

	// PostgreSQL
	channel string // "apikeys:<table>"
	notify  *stmt  // SELECT pg_notify(channel, id)

	// MySQL, SQLite: the change log "<table>_changes".
	changes                                     string // quoted
	insert, readAfter, maxSeq, pruneUpTo, prune *stmt
}

func (s *Store) initInvalidation(c *Config, mk func(string) *stmt) error {
	if c.PollInterval < 0 || c.LivenessTimeout < 0 {
		return errors.New("PollInterval and LivenessTimeout must not be negative")
	}
	inv := &s.inv
	inv.poll = c.PollInterval
	if inv.poll == 0 {
		inv.poll = defaultPollInterval
	}
	inv.liveness = c.LivenessTimeout
	if inv.liveness == 0 {
		inv.liveness = defaultLivenessTimeout
	}
	if s.d.name == Postgres {
		inv.channel = channelFor(s.table)
		inv.notify = mk("SELECT pg_notify(?, ?)")
		return nil
	}
	inv.pruneEvery = pruneEvery
	inv.changes = s.d.quote(s.table + "_changes")
	t := inv.changes
	if s.d.name == MySQL {
		// created_at is the database's clock, so that instances whose
		// clocks disagree prune the same rows.
		inv.insert = mk("INSERT INTO " + t + " (key_id, created_at) VALUES (?, UTC_TIMESTAMP(6))")
		inv.pruneUpTo = mk("SELECT MAX(seq) FROM (SELECT seq FROM " + t +
			" WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND ORDER BY seq LIMIT ?) AS old")
	} else {
		// One SQLite file is one host, so one clock: the process's.
		inv.insert = mk("INSERT INTO " + t + " (key_id, created_at) VALUES (?, ?)")
		inv.pruneUpTo = mk("SELECT MAX(seq) FROM (SELECT seq FROM " + t +
			" WHERE created_at < ? ORDER BY seq LIMIT ?) AS old")
	}
	// From the highest seq read, included: its row must still be there
	// (see readChanges).
	inv.readAfter = mk("SELECT seq, key_id FROM " + t + " WHERE seq >= ? ORDER BY seq LIMIT ?")
	inv.maxSeq = mk("SELECT MAX(seq) FROM " + t)
	inv.prune = mk("DELETE FROM " + t + " WHERE seq <= ?")
	return nil
}

// Publish implements apikeys.Invalidator: it tells every instance
// subscribed on this table, this one included, that the key with the id
// changed or was deleted. On PostgreSQL it is pg_notify on the channel
// "apikeys:<table>"; on MySQL and SQLite, one row in the change log.
func (s *Store) Publish(ctx context.Context, id uuid.UUID) error {
	var err error
	switch s.d.name {
	case Postgres:
		_, err = s.inv.notify.exec(ctx, s.inv.channel, id.String())
	case MySQL:
		_, err = s.inv.insert.exec(ctx, id.String())
	default:
		_, err = s.inv.insert.exec(ctx, id.String(), time.Now().UnixMicro())
	}
	if err != nil {
		return fmt.Errorf("sqlstore: publish: %w", err)
	}
	return nil
}

// Subscribe implements apikeys.Invalidator: it delivers the ids that
// Publish announces on this table to onChange until ctx is done, and then
// returns nil. It calls onReset whenever changes may have been missed: once
// it listens (PostgreSQL) or has read where the change log ends (MySQL,
// SQLite); whenever the connection or a read fails or does not answer
// within Config.LivenessTimeout; and again once it is back. It retries by
// itself, after a backoff from 50ms doubling up to 5s.
//
// On PostgreSQL it holds one connection of its own, outside the
// *sqlx.DB's pool, opened with the configuration of the pool's
// connections, so it needs the pgx driver (github.com/jackc/pgx/v5/stdlib);
// with another driver it returns an error at once. On MySQL and SQLite it
// reads through the pool, every Config.PollInterval. See "Invalidation" in
// the package doc.
//
// End Subscribe (close the Manager) before closing the Store.
func (s *Store) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	if s.d.name == Postgres {
		return s.listen(ctx, onChange, onReset)
	}
	return s.pollChanges(ctx, onChange, onReset)
}

// channelFor is the NOTIFY channel of a table: at most 8+MaxTableLen = 55
// bytes, within PostgreSQL's 63.
func channelFor(table string) string { return "apikeys:" + table }

// listenStatement is LISTEN on the channel, quoted as an identifier (the
// channel holds a ':', and LISTEN would fold an unquoted name to lower
// case, while pg_notify takes it as written).
func listenStatement(channel string) string {
	return "LISTEN " + pgx.Identifier{channel}.Sanitize()
}

// backoff is the wait between attempts after failures.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the current backoff or until ctx is done, and doubles
// the next one.
func (b *backoff) wait(ctx context.Context) {
	b.d = min(max(2*b.d, minBackoff), maxBackoff)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
