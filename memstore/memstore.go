// Package memstore is an in-memory apikeys.Store: the embedded default, and
// the store for users' unit tests. It keeps everything in process memory,
// so keys are lost on restart and not shared between instances; use
// redisstore or sqlstore for that.
//
// Lookups by id are one map read under a read lock. Each user's ids are
// kept sorted, so a page of a listing costs O(log n + page). Stored records
// are never mutated in place: each is an apikeys.Shared, an update swaps
// in a new one, and reads return copies, so callers can change what they
// get freely. The Manager reads records in place instead (View, see
// apikeys.Viewer), which is why memstore's Authorize allocates nothing.
package memstore

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/keyward/apikeys"
)

// Store is an in-memory apikeys.Store, safe for concurrent use. The zero
// value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	byID   map[uuid.UUID]*apikeys.Shared // never modified: replaced whole
	byUser map[string][]uuid.UUID        // ascending
}

var (
	_ apikeys.Store  = (*Store)(nil)
	_ apikeys.Local  = (*Store)(nil)
	_ apikeys.Viewer = (*Store)(nil)
)

// Local marks the store as never waiting on I/O (see apikeys.Local).
func (*Store) Local() {}

// New returns an empty Store.
func New() *Store {
	return &Store{
		byID:   make(map[uuid.UUID]*apikeys.Shared),
		byUser: make(map[string][]uuid.UUID),
	}
}

// Len returns the number of stored records.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// Create implements apikeys.Store.
func (s *Store) Create(ctx context.Context, rec apikeys.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stored := apikeys.Share(&rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[rec.ID]; ok {
		return apikeys.ErrDuplicate
	}
	s.byID[rec.ID] = stored
	ids := s.byUser[rec.UserID]
	i, _ := slices.BinarySearchFunc(ids, rec.ID, compareID)
	s.byUser[rec.UserID] = slices.Insert(ids, i, rec.ID)
	return nil
}

// Get implements apikeys.Store.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikeys.Record{}, err
	}
	s.mu.RLock()
	sh, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return apikeys.Record{}, apikeys.ErrNotFound
	}
	return clone(sh.Record()), nil
}

// ViewerOf implements apikeys.Viewer: it returns s.
func (s *Store) ViewerOf() apikeys.Store { return s }

// View implements apikeys.Viewer: it returns the stored record itself,
// which nobody modifies.
func (s *Store) View(ctx context.Context, id uuid.UUID) (*apikeys.Shared, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	sh, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return nil, apikeys.ErrNotFound
	}
	return sh, nil
}

// List implements apikeys.Store.
func (s *Store) List(ctx context.Context, userID string, q apikeys.ListQuery) ([]apikeys.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.byUser[userID]
	end := len(ids)
	if q.Before != (uuid.UUID{}) {
		end, _ = slices.BinarySearchFunc(ids, q.Before, compareID)
	}
	start := max(end-q.Limit, 0)
	out := make([]apikeys.Record, 0, end-start)
	for i := end - 1; i >= start; i-- {
		out = append(out, clone(s.byID[ids[i]].Record()))
	}
	return out, nil
}

// Update implements apikeys.Store.
func (s *Store) Update(ctx context.Context, rec apikeys.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stored := clone(&rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.byID[rec.ID]
	if !ok {
		return apikeys.ErrNotFound
	}
	cur := sh.Record()
	if cur.UserID != rec.UserID {
		return apikeys.ErrNotFound
	}
	if cur.Version != rec.Version-1 {
		return apikeys.ErrConflict
	}
	// Never move the last use back: rec was read before any TouchLastUsed
	// since (see apikeys.Store).
	if cur.LastUsedAt.After(stored.LastUsedAt) {
		stored.LastUsedAt = cur.LastUsedAt
	}
	// Keep the counters Spend changes, unless rec sets the credits.
	stored.Usage.WindowStart, stored.Usage.WindowUsed = cur.Usage.WindowStart, cur.Usage.WindowUsed
	if !rec.SetCredits {
		stored.Usage.RefilledAt = cur.Usage.RefilledAt
		if stored.Credits != nil && cur.Credits != nil {
			stored.Credits.Remaining = cur.Credits.Remaining
		}
	}
	s.byID[rec.ID] = apikeys.Share(&stored)
	return nil
}

// Spend implements apikeys.Store. A key without limits costs a read lock,
// as Get does; a limited one the write lock, under which the charge is
// exact.
func (s *Store) Spend(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return apikeys.Record{}, false, err
	}
	s.mu.RLock()
	sh, ok := s.byID[q.ID]
	s.mu.RUnlock()
	if !ok {
		return apikeys.Record{}, false, apikeys.ErrNotFound
	}
	if rec := sh.Record(); !rec.Limited() || rec.Digest != q.Digest {
		return clone(rec), false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok = s.byID[q.ID]
	if !ok {
		return apikeys.Record{}, false, apikeys.ErrNotFound
	}
	rec := sh.Record()
	next := clone(rec)
	if !next.Limited() || next.Digest != q.Digest || next.Charge(q.Cost, q.Now) != nil {
		return clone(rec), false, nil
	}
	s.byID[q.ID] = sh.WithCounters(next.Usage, remaining(&next))
	return next, true, nil
}

// Refund implements apikeys.Store.
func (s *Store) Refund(ctx context.Context, q apikeys.RefundRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.byID[q.ID]
	if !ok || sh.Record().Version != q.Version {
		return nil
	}
	next := clone(sh.Record()) // Refund writes into *Credits: never the stored one's
	next.Refund(q.Cost, q.WindowStart, q.RefilledAt)
	s.byID[q.ID] = sh.WithCounters(next.Usage, remaining(&next))
	return nil
}

// Delete implements apikeys.Store.
func (s *Store) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.byID[id]
	if !ok || sh.Record().UserID != userID {
		return apikeys.ErrNotFound
	}
	delete(s.byID, id)
	ids := s.byUser[userID]
	if i, found := slices.BinarySearchFunc(ids, id, compareID); found {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(s.byUser, userID)
	} else {
		s.byUser[userID] = ids
	}
	return nil
}

// TouchLastUsed implements apikeys.Store.
func (s *Store) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		sh, ok := s.byID[u.ID]
		if !ok || !u.At.After(sh.Record().LastUsedAt) {
			continue
		}
		// Stored records are never changed in place: swap in a copy.
		s.byID[u.ID] = sh.WithLastUsed(u.At)
	}
	return nil
}

// remaining is rec's credits left, 0 without credits.
func remaining(rec *apikeys.Record) int64 {
	if rec.Credits == nil {
		return 0
	}
	return rec.Credits.Remaining
}

func compareID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// clone copies rec, giving its string lists one fresh backing array (one
// allocation), each capped so that appending to one cannot overwrite the
// next, and its address list a copy of its own.
func clone(rec *apikeys.Record) apikeys.Record {
	c := *rec
	no, na, ns := len(rec.AllowedOrigins), len(rec.AllowedAssistants), len(rec.Scopes)
	c.AllowedOrigins, c.AllowedAssistants, c.Scopes = nil, nil, nil
	if no+na+ns > 0 {
		buf := make([]string, no+na+ns)
		copy(buf, rec.AllowedOrigins)
		copy(buf[no:], rec.AllowedAssistants)
		copy(buf[no+na:], rec.Scopes)
		if no > 0 {
			c.AllowedOrigins = buf[:no:no]
		}
		if na > 0 {
			c.AllowedAssistants = buf[no : no+na : no+na]
		}
		if ns > 0 {
			c.Scopes = buf[no+na:]
		}
	}
	c.AllowedIPs = nil
	if len(rec.AllowedIPs) > 0 {
		c.AllowedIPs = slices.Clone(rec.AllowedIPs)
	}
	if rec.RateLimit != nil {
		r := *rec.RateLimit
		c.RateLimit = &r
	}
	if rec.Credits != nil {
		cr := *rec.Credits
		if cr.Refill != nil {
			r := *cr.Refill
			cr.Refill = &r
		}
		c.Credits = &cr
	}
	c.SetCredits = false
	return c
}
