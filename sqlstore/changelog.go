package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The change log (MySQL, SQLite): Publish inserts a row, every subscriber
// polls for rows above the highest seq it has seen, and rows are pruned
// after changeRetention.
const (
	// readBatch bounds the rows one read returns; a full batch is
	// followed by another read at once.
	readBatch = 1000

	// gapGrace is how long a seq that is missing below the highest seen
	// is looked for: an AUTO_INCREMENT value is taken when a row is
	// inserted, not when it commits, so a row can appear below one
	// already read. A seq still missing after gapGrace is taken for one
	// that will never commit (a rolled-back insert, a server restart, an
	// auto_increment_increment above 1).
	gapGrace = 30 * time.Second
	// maxMissing bounds the seqs looked for at once; when more are
	// missing, the lowest are given up first.
	maxMissing = 256

	// changeRetention is how long change-log rows are kept. A subscriber
	// whose last successful read is older than half of it resets and
	// starts again from the end of the log, since rows it has not read
	// may be gone.
	changeRetention = 10 * time.Minute
	// pruneEvery is how often each subscriber prunes, in rounds of at
	// most pruneBatches DELETEs of at most pruneBatch rows each.
	pruneEvery   = time.Minute
	pruneBatch   = 500
	pruneBatches = 20
)

// seqWindow is what a subscriber has read of the change log: every seq up
// to hi, except those in missing, which it still looks for.
type seqWindow struct {
	hi      int64
	hiID    string              // key_id of the row at hi; "" before the first row read
	missing map[int64]time.Time // seq -> when first missed
	lost    int                 // seqs given up since the last check: the cache may be stale
}

func newSeqWindow(hi int64) *seqWindow {
	return &seqWindow{hi: hi, missing: make(map[int64]time.Time)}
}

// add records a row read at now, and reports whether it is new, that is,
// whether to deliver it.
func (w *seqWindow) add(seq int64, now time.Time) bool {
	if seq > w.hi {
		first := max(w.hi+1, seq-maxMissing)
		// Seqs too far below to look for are given up at once. The reset
		// that follows comes after their changes were stored (a change is
		// stored before it is published), so it covers them.
		w.lost += int(first - (w.hi + 1))
		for m := first; m < seq; m++ {
			w.missing[m] = now
		}
		w.hi = seq
		return true
	}
	if _, ok := w.missing[seq]; ok {
		delete(w.missing, seq)
		return true
	}
	return false // seen already, or given up
}

// expire gives up the seqs missing since before now-gapGrace, and the
// lowest beyond maxMissing.
func (w *seqWindow) expire(now time.Time) {
	for seq, since := range w.missing {
		if now.Sub(since) >= gapGrace {
			delete(w.missing, seq)
			w.lost++
		}
	}
	if extra := len(w.missing) - maxMissing; extra > 0 {
		for _, seq := range w.pending()[:extra] {
			delete(w.missing, seq)
		}
		w.lost += extra
	}
}

// pending returns the missing seqs in order.
func (w *seqWindow) pending() []int64 {
	out := make([]int64, 0, len(w.missing))
	for seq := range w.missing {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}

// change is one row of the change log.
type change struct {
	seq int64
	id  string
}

// pollChanges is Subscribe on MySQL and SQLite.
func (s *Store) pollChanges(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	var (
		b         backoff
		w         *seqWindow // nil: to start again from the end of the log
		lastRead  time.Time  // of the last successful read, wall clock (see below)
		nextPrune time.Time
	)
	for ctx.Err() == nil {
		if w == nil {
			hi, err := s.lastSeq(ctx)
			if err != nil {
				if ctx.Err() == nil {
					onReset()
					b.wait(ctx)
				}
				continue
			}
			w, lastRead = newSeqWindow(hi), time.Now().Round(0)
			onReset() // reading from the end of the log: forget what came before
			b.reset()
		}
		more, err := s.readChanges(ctx, w, onChange)
		now := time.Now()
		if errors.Is(err, errSeqsLost) {
			onReset() // keep reading where it is: only the lost rows are unknown
			err = nil
		}
		// The stall check compares wall-clock times (Round(0) drops the
		// monotonic reading): the monotonic clock stops while a machine
		// is suspended, and rows are pruned by the database's clock
		// meanwhile.
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil, now.Round(0).Sub(lastRead) > changeRetention/2:
			// Failed, or stalled for so long that rows may have been
			// pruned unread: the cache may be stale. Start again.
			w = nil
			onReset()
			if err != nil {
				b.wait(ctx)
			}
			continue
		}
		lastRead = now.Round(0)
		if !now.Before(nextPrune) {
			nextPrune = now.Add(s.inv.pruneEvery)
			if errors.Is(s.pruneChanges(ctx, w), errLogRewound) {
				w = nil
				onReset()
				continue
			}
		}
		if !more {
			t := time.NewTimer(s.inv.poll)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// lastSeq returns the highest seq in the change log, 0 when it is empty.
func (s *Store) lastSeq(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
	defer cancel()
	row, err := s.inv.maxSeq.queryRow(rctx)
	var hi sql.NullInt64
	if err == nil {
		err = row.Scan(&hi)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: subscribe: %w", err)
	}
	return hi.Int64, nil
}

// readChanges reads the rows above w.hi and those still missing below it,
// delivers the new ones, and reports whether there may be more to read at
// once. It returns errLogRewound when the row at w.hi is gone or is
// another (the log was emptied, then refilled past w.hi), and errSeqsLost
// when it gave up seqs that may yet commit: the caller resets either way.
func (s *Store) readChanges(ctx context.Context, w *seqWindow, onChange func(uuid.UUID)) (more bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
	defer cancel()
	rows, err := s.inv.readAfter.query(rctx, w.hi, readBatch)
	if err != nil {
		return false, fmt.Errorf("sqlstore: subscribe: %w", err)
	}
	got, err := scanChanges(rows)
	if err != nil {
		return false, err
	}
	more = len(got) == readBatch
	if w.hiID != "" {
		if len(got) == 0 || got[0].seq != w.hi || got[0].id != w.hiID {
			return false, errLogRewound
		}
	}
	if len(got) > 0 && got[0].seq == w.hi {
		w.hiID = got[0].id // known from now on, also when w.hi came from lastSeq
		got = got[1:]      // read before
	}
	if pending := w.pending(); len(pending) > 0 {
		// Rare (a gap is a row committed after a later one, or never),
		// and at most maxMissing seqs: not worth a prepared statement.
		args := make([]any, len(pending))
		for i, seq := range pending {
			args[i] = seq
		}
		q := s.d.rebind("SELECT seq, key_id FROM " + s.inv.changes +
			" WHERE seq IN (?" + strings.Repeat(", ?", len(pending)-1) + ")")
		rows, err := s.db.QueryContext(rctx, q, args...)
		if err != nil {
			return false, fmt.Errorf("sqlstore: subscribe: %w", err)
		}
		late, err := scanChanges(rows)
		if err != nil {
			return false, err
		}
		got = append(got, late...)
	}
	now := time.Now()
	for _, c := range got {
		if !w.add(c.seq, now) {
			continue
		}
		if c.seq == w.hi {
			w.hiID = c.id
		}
		if id, err := uuid.Parse(c.id); err == nil {
			onChange(id)
		}
	}
	w.expire(now)
	if w.lost > 0 {
		w.lost = 0
		return more, errSeqsLost
	}
	return more, nil
}

// errSeqsLost: a subscriber gave up looking for seqs missing below the
// highest it read (more in flight at once than it tracks, or a commit that
// took longer than gapGrace), so a change may have gone unseen.
var errSeqsLost = errors.New("sqlstore: change-log rows given up for lost")

func scanChanges(rows *sql.Rows) ([]change, error) {
	defer rows.Close()
	var out []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.seq, &c.id); err != nil {
			return nil, fmt.Errorf("sqlstore: subscribe: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: subscribe: %w", err)
	}
	return out, nil
}

// errLogRewound: the change log ends below what a subscriber has read
// (someone emptied or recreated it), so new rows would go unseen.
var errLogRewound = errors.New("sqlstore: the change log was rewound")

// pruneChanges deletes change-log rows older than changeRetention, in
// batches, always keeping the newest row, so that an AUTO_INCREMENT
// counter that a server restart recomputes from the table (MySQL before
// 8.0) cannot go back. It returns errLogRewound when the log ends below
// w.hi, and other errors, which only delay pruning, as they are.
func (s *Store) pruneChanges(ctx context.Context, w *seqWindow) error {
	for range pruneBatches {
		top, err := s.lastSeq(ctx)
		if err != nil {
			return err
		}
		if w != nil && top < w.hi {
			return errLogRewound
		}
		n, err := s.pruneOnce(ctx, top)
		if err != nil || n < pruneBatch {
			return err
		}
	}
	return nil
}

// pruneOnce deletes up to pruneBatch of the oldest rows that are past
// retention, below top.
func (s *Store) pruneOnce(ctx context.Context, top int64) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.inv.liveness)
	defer cancel()
	var age any = changeRetention.Microseconds()
	if s.d.name == SQLite {
		age = time.Now().Add(-changeRetention).UnixMicro() // the cutoff itself
	}
	row, err := s.inv.pruneUpTo.queryRow(rctx, age, pruneBatch)
	var upTo sql.NullInt64
	if err == nil {
		err = row.Scan(&upTo)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	if !upTo.Valid {
		return 0, nil
	}
	res, err := s.inv.prune.exec(rctx, min(upTo.Int64, top-1))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	return n, nil
}
