package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/apikeys"
)

// Rate limits and credits (schema version 5): the columns, how a row's
// limits are read, and Spend and Refund.
//
// Key.Charge is the rule. Every dialect applies it in SQL, in an UPDATE
// whose WHERE holds "the record is limited, has the presented digest, and
// Charge allows the cost" and whose SET writes what Charge writes, both as
// expressions over the row as the UPDATE finds it. The database evaluates
// them on the latest version of the row, under its row lock (PostgreSQL
// re-evaluates WHERE and SET on the latest version after waiting for a
// concurrent writer; InnoDB's UPDATE is a locking read; SQLite has one
// writer at a time), so concurrent spends from any number of instances
// are exact: each sees the others' writes, and a refused charge writes
// nothing.

// limitColumns are the columns of schema version 5, in the order of
// columns.
const limitColumns = "rate_limit, rate_window_seconds, credits_remaining, refill_amount, refill_interval_seconds, " +
	"window_start, window_used, refilled_at"

// Charge's steps as SQL expressions over the row, with the named
// parameters :now and :cost (see bindNamed). The remainders are those of
// Go: PostgreSQL's, MySQL's and SQLite's % all truncate toward zero, as
// Go's does, and no division is needed (see chargeSQL).
const (
	// rolled: step 1 starts a new window, once the counted one has lasted
	// the window's length. A window never moves back.
	sqlRolled = "(rate_window_seconds IS NOT NULL AND :now - :now % rate_window_seconds >= window_start + rate_window_seconds)"
	// sqlUsed: what the window has used before this charge.
	sqlUsed = "(CASE WHEN " + sqlRolled + " THEN 0 ELSE window_used END)"
	// refilled: step 2 refills. Charge's n = (now - refilled_at) /
	// interval is positive exactly when now - refilled_at is at least one
	// interval (truncation toward zero gives n <= 0 for a clock behind).
	sqlRefilled = "(credits_remaining IS NOT NULL AND refill_interval_seconds IS NOT NULL AND :now - refilled_at >= refill_interval_seconds)"
	// sqlRemaining: the credits before this charge.
	sqlRemaining = "(CASE WHEN " + sqlRefilled + " THEN refill_amount ELSE credits_remaining END)"
	// sqlWindowStart and sqlRefilledAt: the counters after steps 1 and 2.
	// refilled_at + n*interval is now - (now - refilled_at) % interval
	// for a positive now - refilled_at.
	sqlWindowStart = "(CASE WHEN " + sqlRolled + " THEN :now - :now % rate_window_seconds ELSE window_start END)"
	sqlRefilledAt  = "(CASE WHEN " + sqlRefilled + " THEN :now - (:now - refilled_at) % refill_interval_seconds ELSE refilled_at END)"

	// sqlLimited is apikeys.Key.Limited.
	sqlLimited = "(rate_limit IS NOT NULL OR credits_remaining IS NOT NULL)"
	// sqlAllowed is step 3's test.
	sqlAllowed = "(rate_limit IS NULL OR " + sqlUsed + " + :cost <= rate_limit)" +
		" AND (credits_remaining IS NULL OR :cost <= " + sqlRemaining + ")"

	// sqlCharge is step 3's writes, and steps 1 and 2's. MySQL and
	// MariaDB assign from left to right, each assignment seeing the
	// columns already assigned, where PostgreSQL and SQLite see the old
	// row throughout; so every expression reads only columns assigned
	// after it (window_used reads window_start, credits_remaining reads
	// refilled_at), or ones whose assignment keeps what it reads (NULL
	// or not, for credits_remaining in sqlRefilled), and the order works
	// on all three.
	sqlCharge = "window_used = CASE WHEN rate_limit IS NULL THEN window_used ELSE " + sqlUsed + " + :cost END, " +
		"window_start = " + sqlWindowStart + ", " +
		"credits_remaining = " + sqlRemaining + " - :cost, " +
		"refilled_at = " + sqlRefilledAt
)

// maxQuotaSQL is apikeys.MaxQuota as an SQL literal.
var maxQuotaSQL = strconv.FormatInt(apikeys.MaxQuota, 10)

// pgAsyncCommit, the last condition of a PostgreSQL UPDATE's WHERE, makes
// the statement's transaction commit asynchronously when it writes (see
// Config.SyncSpends): set_config(..., true) sets synchronous_commit for
// the current transaction, which for one statement outside a transaction
// block is the statement's own, and the commit reads it before the
// setting is reset. A row the UPDATE writes has passed every condition,
// this one included; a statement that writes nothing flushes nothing
// anyway.
const pgAsyncCommit = " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"

// chargeSQL returns the dialect's statement that spends (see Spend), with
// its named parameters; async: commit asynchronously on PostgreSQL.
func chargeSQL(d Dialect, t string, async bool) (string, []string) {
	where := "id = :id AND digest = :digest AND " + sqlLimited + " AND " + sqlAllowed
	if d == Postgres && async {
		where += pgAsyncCommit
	}
	switch d {
	case Postgres:
		// The UPDATE writes only a limited record that Charge lets
		// spend, and takes no row lock otherwise (a WHERE that fails on
		// the version the statement sees locks nothing). The SELECT reads
		// the record as the statement found it when the UPDATE did not
		// write: a data-modifying WITH runs once, and the SELECT's
		// snapshot is the statement's, before the UPDATE.
		return "WITH upd AS (UPDATE " + t + " SET " + sqlCharge + " WHERE " + where + " RETURNING " + columns + ") " +
				"SELECT " + columns + ", TRUE FROM upd " +
				"UNION ALL SELECT " + columns + ", FALSE FROM " + t + " WHERE id = :id AND NOT EXISTS (SELECT 1 FROM upd)",
			[]string{"id", "digest", "now", "cost"}
	case SQLite:
		return "UPDATE " + t + " SET " + sqlCharge + " WHERE " + where + " RETURNING " + columns,
			[]string{"id", "digest", "now", "cost"}
	default:
		// No RETURNING: the UPDATE also checks that the record is the
		// version Spend read and that steps 1 and 2 give the window and
		// refill interval Spend computed from it, so that what Spend
		// returns is the record it spent from (see Store.Spend).
		return "UPDATE " + t + " SET " + sqlCharge + " WHERE " + where +
				" AND version = :version AND " + sqlWindowStart + " = :window_start AND " + sqlRefilledAt + " = :refilled_at",
			[]string{"id", "digest", "now", "cost", "version", "window_start", "refilled_at"}
	}
}

// refundSQL is Refund's statement: apikeys.Key.Refund as an UPDATE, which
// writes only a record with something to give back; async: commit
// asynchronously on PostgreSQL.
func refundSQL(d Dialect, t string, async bool) (string, []string) {
	window := "(rate_limit IS NOT NULL AND window_start = :window_start)"
	interval := "(credits_remaining IS NOT NULL AND refilled_at = :refilled_at)"
	where := "WHERE id = :id AND version = :version AND (" + window + " OR " + interval + ")"
	if d == Postgres && async {
		where += pgAsyncCommit
	}
	return "UPDATE " + t + " SET " +
			"window_used = CASE WHEN " + window + " THEN CASE WHEN window_used > :cost THEN window_used - :cost ELSE 0 END ELSE window_used END, " +
			"credits_remaining = CASE WHEN " + interval + " THEN CASE WHEN credits_remaining > " + maxQuotaSQL + " - :cost THEN " + maxQuotaSQL +
			" ELSE credits_remaining + :cost END ELSE credits_remaining END " + where,
		[]string{"id", "cost", "version", "window_start", "refilled_at"}
}

// bindNamed rewrites the named parameters of q (":name", each name one of
// names) into the dialect's placeholders: $N on PostgreSQL and ?N on
// SQLite, N being the name's position in names, so that a name used
// several times takes one argument; "?" on MySQL, which has no numbered
// placeholders, in which case order lists for each "?" the position in
// names of its argument (nil otherwise).
func bindNamed(d Dialect, q string, names []string) (text string, order []int) {
	var b strings.Builder
	for {
		i := strings.IndexByte(q, ':')
		if i < 0 {
			b.WriteString(q)
			break
		}
		b.WriteString(q[:i])
		j := i + 1
		for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z') {
			j++
		}
		k := -1
		for n, name := range names {
			if name == q[i+1:j] {
				k = n
			}
		}
		if k < 0 {
			panic("sqlstore: unknown parameter " + q[i:j] + " in " + q) // our statements only
		}
		switch d {
		case Postgres:
			b.WriteString("$" + strconv.Itoa(k+1))
		case SQLite:
			b.WriteString("?" + strconv.Itoa(k+1))
		default:
			b.WriteString("?")
			order = append(order, k)
		}
		q = q[j:]
	}
	return b.String(), order
}

// namedStmt is a statement with named parameters (see bindNamed).
type namedStmt struct {
	*stmt
	order []int // MySQL: the argument of each "?"
}

// args returns the statement's arguments, given one per name.
func (n namedStmt) args(vals ...any) []any {
	if n.order == nil {
		return vals
	}
	out := make([]any, len(n.order))
	for i, k := range n.order {
		out[i] = vals[k]
	}
	return out
}

// maxSpendAttempts bounds MySQL's read-then-update rounds of one Spend
// (see Store.Spend): another round follows only when the record changed
// between the two, so more than a few means a storm of Updates.
const maxSpendAttempts = 8

// Spend implements apikeys.Store: it returns the record with q.ID and
// spends q.Cost from its counters if the record is limited, has digest
// q.Digest and apikeys.Key.Charge at q.Now allows it, atomically. A
// record without limits is only read. Spend changes neither the version
// nor last_used_at and publishes nothing (counters are not cached: every
// Authorize of a limited key spends here).
//
// PostgreSQL: one statement, so one round trip whatever the record: an
// UPDATE ... RETURNING in a WITH that writes a limited record Charge lets
// spend, and a SELECT of the record when it did not (see chargeSQL). A
// key without limits matches no row of the UPDATE, so it is read without
// a row lock, at the cost of two primary-key lookups in one statement. A
// spend commits asynchronously unless Config.SyncSpends.
//
// SQLite: a SELECT, and for a limited record with the digest that Charge
// lets spend, an UPDATE ... RETURNING (SQLite 3.35 or later) with Charge in
// its WHERE, so that a key without limits never takes the write lock.
//
// MySQL, MariaDB: no RETURNING. A SELECT (the whole cost for a key
// without limits, and for a charge that the record read refuses), then an
// UPDATE with Charge in its WHERE, evaluated by InnoDB on the latest
// version of the row under its lock. The UPDATE also requires the version
// read, and that steps 1 and 2 of Charge land on the window and refill
// interval computed from the record read, so that when it writes, the
// record Spend returns (the one read, charged by Key.Charge) is the one it
// spent from, with the window and interval a Refund must name. Its
// WindowUsed and Credits.Remaining do not include what other instances
// spent between the read and the UPDATE (the store counts them; only the
// copy returned, used for RateLimitLeft and CreditsLeft, lags). When the
// UPDATE writes nothing the record changed in between: Spend reads it
// again and starts over, at most maxSpendAttempts times. A spend always
// changes window_used or credits_remaining (a cost is at least 1), so
// the driver's count of changed rows is the count of spends.
func (s *Store) Spend(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	if q.Cost < 1 || q.Cost > apikeys.MaxQuota {
		return apikeys.Record{}, false, fmt.Errorf("sqlstore: spend: cost %d is not 1 to %d", q.Cost, apikeys.MaxQuota)
	}
	var (
		rec   apikeys.Record
		spent bool
		err   error
	)
	switch s.d.name {
	case Postgres:
		rec, spent, err = s.spendOnce(ctx, q)
	case SQLite:
		rec, spent, err = s.spendReturning(ctx, q)
	default:
		rec, spent, err = s.spendChecked(ctx, q)
	}
	switch {
	case err == nil:
		return rec, spent, nil
	case errors.Is(err, sql.ErrNoRows):
		return apikeys.Record{}, false, apikeys.ErrNotFound
	default:
		return apikeys.Record{}, false, fmt.Errorf("sqlstore: spend: %w", err)
	}
}

// spendOnce is PostgreSQL's Spend: one statement.
func (s *Store) spendOnce(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	var rec apikeys.Record
	var spent bool
	row, err := s.charge.queryRow(ctx, s.charge.args(q.ID.String(), q.Digest[:], q.Now, q.Cost)...)
	if err == nil {
		err = s.scanSpent(row, &rec, &spent)
	}
	return rec, spent, err
}

// chargeable reads the record with q.ID and reports whether Spend should
// try to charge it: it is limited, has the digest, and Charge lets the
// record as read spend. next is the record as read, charged.
func (s *Store) chargeable(ctx context.Context, q apikeys.SpendRequest) (rec, next apikeys.Record, ok bool, err error) {
	row, err := s.get.queryRow(ctx, q.ID.String())
	if err == nil {
		err = s.scan(row, &rec)
	}
	if err != nil || !rec.Limited() || subtle.ConstantTimeCompare(rec.Digest[:], q.Digest[:]) != 1 {
		return rec, rec, false, err
	}
	next = rec
	if rec.Credits != nil {
		c := *rec.Credits
		next.Credits = &c
	}
	return rec, next, next.Charge(q.Cost, q.Now) == nil, nil
}

// spendReturning is SQLite's Spend.
func (s *Store) spendReturning(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	rec, _, ok, err := s.chargeable(ctx, q)
	if err != nil || !ok {
		return rec, false, err
	}
	var got apikeys.Record
	row, err := s.charge.queryRow(ctx, s.charge.args(q.ID.String(), q.Digest[:], q.Now, q.Cost)...)
	if err == nil {
		err = s.scan(row, &got)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Refused by the latest version of the record (another spend
		// came first), or the record is gone: as read, unspent.
		return rec, false, nil
	case err != nil:
		return apikeys.Record{}, false, err
	}
	return got, true, nil
}

// spendChecked is MySQL's Spend.
func (s *Store) spendChecked(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	for range maxSpendAttempts {
		rec, next, ok, err := s.chargeable(ctx, q)
		if err != nil || !ok {
			return rec, false, err
		}
		res, err := s.charge.exec(ctx, s.charge.args(q.ID.String(), q.Digest[:], q.Now, q.Cost,
			rec.Version, next.Usage.WindowStart, next.Usage.RefilledAt)...)
		if err != nil {
			return apikeys.Record{}, false, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return apikeys.Record{}, false, err
		}
		if n > 0 {
			return next, true, nil
		}
	}
	return apikeys.Record{}, false, fmt.Errorf("the record changed between read and write %d times in a row", maxSpendAttempts)
}

// Refund implements apikeys.Store: one UPDATE (see refundSQL), which
// changes neither the version nor last_used_at. A missing record is not
// an error.
func (s *Store) Refund(ctx context.Context, r apikeys.RefundRequest) error {
	if r.Cost < 1 || r.Cost > apikeys.MaxQuota {
		return fmt.Errorf("sqlstore: refund: cost %d is not 1 to %d", r.Cost, apikeys.MaxQuota)
	}
	if _, err := s.refund.exec(ctx, s.refund.args(r.ID, r.Cost, r.Version, r.WindowStart, r.RefilledAt)...); err != nil {
		return fmt.Errorf("sqlstore: refund: %w", err)
	}
	return nil
}

// limitArgs are the arguments that write a record's limits, in the order
// of limitColumns' first five.
func limitArgs(k *apikeys.Key) (rateLimit, rateWindow, remaining, refillAmount, refillInterval any) {
	if r := k.RateLimit; r != nil {
		rateLimit, rateWindow = r.Limit, r.WindowSeconds
	}
	if c := k.Credits; c != nil {
		remaining = c.Remaining
		if f := c.Refill; f != nil {
			refillAmount, refillInterval = f.Amount, f.IntervalSeconds
		}
	}
	return rateLimit, rateWindow, remaining, refillAmount, refillInterval
}

// rawLimits are the limit columns of a row as scanned.
type rawLimits struct {
	rateLimit, rateWindow, remaining, refillAmount, refillInterval nullInt
}

// nullInt is a nullable integer column.
type nullInt struct {
	v     int64
	valid bool
}

// intScanner scans an integer column: int64, or its decimal text (MySQL's
// text protocol), and nothing else (not a float, not a boolean). NULL is
// an error unless null is set, which it then sets to false.
type intScanner struct {
	column string
	dst    *int64
	valid  *bool // nil for a NOT NULL column
}

func (s intScanner) Scan(src any) error {
	var err error
	switch v := src.(type) {
	case int64:
		*s.dst = v
	case []byte:
		*s.dst, err = strconv.ParseInt(string(v), 10, 64)
	case string:
		*s.dst, err = strconv.ParseInt(v, 10, 64)
	case nil:
		if s.valid == nil {
			return fmt.Errorf("sqlstore: %s column: NULL", s.column)
		}
		*s.dst, *s.valid = 0, false
		return nil
	default:
		return fmt.Errorf("sqlstore: %s column: unexpected %T", s.column, src)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %s column: %w", s.column, err)
	}
	if s.valid != nil {
		*s.valid = true
	}
	return nil
}

func (n *nullInt) scanner(column string) intScanner { return intScanner{column, &n.v, &n.valid} }

// limitsBox holds a record's limits, so that reading them costs one
// allocation.
type limitsBox struct {
	rate    apikeys.RateLimit
	credits apikeys.Credits
	refill  apikeys.Refill
}

// decodeLimits sets k's RateLimit and Credits from the row's columns, and
// checks them and k.Usage. What no Store writes (half a rate limit or
// refill, a refill without credits, a count out of range) makes the row an
// error: a limit that cannot be read must never read as none.
func decodeLimits(raw *rawLimits, k *apikeys.Key) error {
	r := raw
	if r.rateLimit.valid != r.rateWindow.valid {
		return errors.New("sqlstore: rate_limit and rate_window_seconds: one is NULL")
	}
	if r.refillAmount.valid != r.refillInterval.valid {
		return errors.New("sqlstore: refill_amount and refill_interval_seconds: one is NULL")
	}
	if r.refillAmount.valid && !r.remaining.valid {
		return errors.New("sqlstore: refill_amount: a refill without credits (credits_remaining is NULL)")
	}
	for _, c := range []struct {
		column string
		n      nullInt
		least  int64
		most   int64
	}{
		{"rate_limit", r.rateLimit, 1, apikeys.MaxQuota},
		{"rate_window_seconds", r.rateWindow, 1, apikeys.MaxQuotaSeconds},
		{"credits_remaining", r.remaining, 0, apikeys.MaxQuota},
		{"refill_amount", r.refillAmount, 1, apikeys.MaxQuota},
		{"refill_interval_seconds", r.refillInterval, 1, apikeys.MaxQuotaSeconds},
		{"window_used", nullInt{k.Usage.WindowUsed, true}, 0, apikeys.MaxQuota},
	} {
		if c.n.valid && (c.n.v < c.least || c.n.v > c.most) {
			return fmt.Errorf("sqlstore: %s column: %d is not %d to %d", c.column, c.n.v, c.least, c.most)
		}
	}
	k.RateLimit, k.Credits = nil, nil
	if !r.rateLimit.valid && !r.remaining.valid {
		return nil
	}
	box := new(limitsBox)
	if r.rateLimit.valid {
		box.rate = apikeys.RateLimit{Limit: r.rateLimit.v, WindowSeconds: r.rateWindow.v}
		k.RateLimit = &box.rate
	}
	if r.remaining.valid {
		box.credits.Remaining = r.remaining.v
		if r.refillAmount.valid {
			box.refill = apikeys.Refill{Amount: r.refillAmount.v, IntervalSeconds: r.refillInterval.v}
			box.credits.Refill = &box.refill
		}
		k.Credits = &box.credits
	}
	return nil
}
