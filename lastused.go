package apikeys

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// lastUsed collects key uses off the request path: Authorize notes a use
// in memory (one shard lock, no I/O); a background goroutine writes them
// to the store in batches, at most once per key per interval.
type lastUsed struct {
	interval time.Duration
	shards   [cacheShards]lastUsedShard
	// flushMu serializes flushes, so that a batch taken from the shards is
	// written before the next one is taken.
	flushMu sync.Mutex
}

// pendingUse is a use waiting to be written: the first in its interval,
// or one put back after a failed write, which the next use replaces.
type pendingUse struct {
	at      time.Time
	putBack bool
}

type lastUsedShard struct {
	mu      sync.Mutex
	pending map[uuid.UUID]pendingUse // uses not yet written
	written map[uuid.UUID]time.Time  // when a use of the key was last written
	_       [32]byte
}

// touchBatch bounds one TouchLastUsed call.
const touchBatch = 1000

// flushTimeout is the least time a background flush is given.
const flushTimeout = 10 * time.Second

func newLastUsed(interval time.Duration) *lastUsed {
	l := &lastUsed{interval: interval}
	for i := range l.shards {
		l.shards[i].pending = make(map[uuid.UUID]pendingUse)
		l.shards[i].written = make(map[uuid.UUID]time.Time)
	}
	return l
}

// note records a use of id now, unless one is pending or was written
// less than an interval ago. The clock is read only when it matters: a key
// in use is almost always already pending.
func (l *lastUsed) note(id uuid.UUID, clock func() time.Time) {
	s := &l.shards[id[15]%cacheShards]
	s.mu.Lock()
	if p, ok := s.pending[id]; !ok || p.putBack {
		now := clock()
		if w, ok := s.written[id]; !ok || now.Sub(w) >= l.interval {
			s.pending[id] = pendingUse{at: now}
		}
	}
	s.mu.Unlock()
}

// take removes and returns the pending uses, marking them written at now,
// and forgets writes older than an interval.
func (l *lastUsed) take(now time.Time) []Use {
	var uses []Use
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for id, p := range s.pending {
			uses = append(uses, Use{ID: id, At: p.at})
			s.written[id] = now
		}
		clear(s.pending)
		for id, w := range s.written {
			if now.Sub(w) >= l.interval {
				delete(s.written, id)
			}
		}
		s.mu.Unlock()
	}
	return uses
}

// putBack returns uses that could not be written, unless newer ones came;
// the next use of the key replaces a put-back one, so last_used_at does
// not lag behind after a store outage (found in review).
func (l *lastUsed) putBack(uses []Use) {
	for _, u := range uses {
		s := &l.shards[u.ID[15]%cacheShards]
		s.mu.Lock()
		if _, ok := s.pending[u.ID]; !ok {
			s.pending[u.ID] = pendingUse{at: u.At, putBack: true}
		}
		delete(s.written, u.ID)
		s.mu.Unlock()
	}
}

// flushLastUsed writes the pending uses to the store. On failure the
// unwritten uses stay pending for the next flush.
func (m *Manager) flushLastUsed(ctx context.Context) error {
	l := m.lastUsed
	if l == nil {
		return nil
	}
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	uses := l.take(m.now())
	for len(uses) > 0 {
		n := min(len(uses), touchBatch)
		opCtx, cancel := m.op(ctx)
		err := m.store.TouchLastUsed(opCtx, uses[:n])
		cancel()
		if err != nil {
			l.putBack(uses)
			return &StoreError{Op: "touch", Err: err}
		}
		uses = uses[n:]
	}
	return nil
}

// runLastUsed flushes every interval until ctx is done.
func (m *Manager) runLastUsed(ctx context.Context) {
	defer m.bg.Done()
	t := time.NewTicker(m.lastUsed.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A short interval must not starve a slow store: give each
			// flush at least flushTimeout.
			fctx, cancel := context.WithTimeout(ctx, max(m.lastUsed.interval, flushTimeout))
			if err := m.flushLastUsed(fctx); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Error("apikeys: cannot record last use of keys; will retry", "err", err)
			}
			cancel()
		}
	}
}
