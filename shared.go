package apikeys

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Shared is a record made to be read in place, without a copy: the
// verification cache keeps records as Shared values, and a Viewer store
// (memstore) keeps its own records so, which is how Authorize answers from
// either without allocating.
//
// A Shared holds two things, neither of which changes after Share made
// it: its own deep copy of the record, which Authorize's rules read and
// which is never handed out, and a second set of the record's four lists
// (AllowedOrigins, AllowedAssistants, Scopes, AllowedIPs; the strings
// themselves are immutable and shared), which the Key that Authorize
// returns carries. Those lists are read-only: see Authorize. A caller that
// writes into them anyway cannot change a decision, since the rules never
// read them, and Authorize notices the change (the lists are compared
// with the record's, which costs a few pointer comparisons while they are
// equal) and hands later callers fresh copies instead.
type Shared struct {
	rec Record
	out keyLists
}

type keyLists struct {
	origins, assistants, scopes []string
	ips                         []netip.Prefix
}

// Share returns a Shared holding a deep copy of rec: nothing the caller
// holds, rec included, reaches it.
func Share(rec *Record) *Shared {
	r := *rec
	r.SetCredits = false
	r.AllowedOrigins, r.AllowedAssistants, r.Scopes = cloneLists(rec.AllowedOrigins, rec.AllowedAssistants, rec.Scopes)
	r.AllowedIPs = slices.Clip(slices.Clone(rec.AllowedIPs))
	r.ownLimits()
	return share(r)
}

// ownLimits gives k copies of what RateLimit and Credits (and its Refill)
// point to, so that nothing k's previous holder writes there reaches k,
// and the other way round.
func (k *Key) ownLimits() {
	if k.RateLimit != nil {
		rl := *k.RateLimit
		k.RateLimit = &rl
	}
	if k.Credits != nil {
		c := *k.Credits
		if c.Refill != nil {
			rf := *c.Refill
			c.Refill = &rf
		}
		k.Credits = &c
	}
}

// share makes a Shared of rec, which the caller gives up: nothing else may
// hold its lists or pointers.
func share(rec Record) *Shared {
	sh := &Shared{rec: rec}
	sh.rec.fillLists()
	sh.out = sh.rec.lists()
	sh.out.origins, sh.out.assistants, sh.out.scopes = cloneLists(sh.out.origins, sh.out.assistants, sh.out.scopes)
	if len(sh.out.ips) > 0 {
		sh.out.ips = slices.Clip(slices.Clone(sh.out.ips))
	} else {
		sh.out.ips = sh.out.ips[:0:0] // empty, but capped all the same: an append copies
	}
	return sh
}

// WithCounters returns a Shared of s's record with the counters u and,
// when the record has credits, credits remaining, for stores that keep
// Shared records (memstore's Spend and Refund). It shares s's lists and
// limits, which neither of them ever changes.
func (s *Shared) WithCounters(u Usage, remaining int64) *Shared {
	n := &Shared{rec: s.rec, out: s.out}
	n.rec.Usage = u
	if c := s.rec.Credits; c != nil {
		cc := *c // Refill is shared: never changed
		cc.Remaining = remaining
		n.rec.Credits = &cc
	}
	return n
}

// WithLastUsed returns a Shared of s's record with LastUsedAt at, sharing
// what WithCounters shares.
func (s *Shared) WithLastUsed(at time.Time) *Shared {
	n := &Shared{rec: s.rec, out: s.out}
	n.rec.LastUsedAt = at
	return n
}

// Record returns the shared record. It must not be modified, nor any of
// its lists or pointers: stores that keep Shared values replace them
// whole (Share a new record) instead.
func (s *Shared) Record() *Record { return &s.rec }

// lists returns k's four lists.
func (k *Key) lists() keyLists {
	return keyLists{k.AllowedOrigins, k.AllowedAssistants, k.Scopes, k.AllowedIPs}
}

// lend gives k, a copy of s's record's Key, the read-only lists s hands
// out, or fresh copies when someone wrote into those.
func (s *Shared) lend(k *Key) {
	r := &s.rec
	if slices.Equal(s.out.origins, r.AllowedOrigins) && slices.Equal(s.out.assistants, r.AllowedAssistants) &&
		slices.Equal(s.out.scopes, r.Scopes) && slices.Equal(s.out.ips, r.AllowedIPs) {
		k.AllowedOrigins, k.AllowedAssistants, k.Scopes, k.AllowedIPs = s.out.origins, s.out.assistants, s.out.scopes, s.out.ips
		return
	}
	k.AllowedOrigins, k.AllowedAssistants, k.Scopes = cloneLists(r.AllowedOrigins, r.AllowedAssistants, r.Scopes)
	k.AllowedIPs = slices.Clip(slices.Clone(r.AllowedIPs))
	if k.AllowedIPs == nil {
		k.AllowedIPs = []netip.Prefix{}
	}
}

// Viewer is implemented by Local stores that keep each record as a
// Shared, never modified once stored (a change stores a new one), such as
// memstore. View returns the stored Shared for the id, or ErrNotFound; it
// must honour ctx as Get does. Authorize reads a Viewer with View instead
// of Get, and so copies nothing.
//
// ViewerOf returns the store itself. The Manager uses View only when the
// Store it was given is what ViewerOf returns: a type that embeds a Viewer
// to wrap it (to count or fail reads in a test, say) has View and ViewerOf
// promoted, but ViewerOf then returns the embedded store, not the wrapper,
// and the Manager reads the wrapper with Get as it would any store.
type Viewer interface {
	Local
	View(ctx context.Context, id uuid.UUID) (*Shared, error)
	ViewerOf() Store
}
