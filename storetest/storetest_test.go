package storetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/storetest"
)

// brokenStore is memstore with one deliberate contract violation, to show
// that the suite catches it. Reopened handles share the memstore and the
// bookkeeping.
type brokenStore struct {
	*memstore.Store
	flaw string
	*brokenData
}

type brokenData struct {
	mu     sync.Mutex
	shared map[uuid.UUID]apikeys.Record
	owner  map[uuid.UUID]string // the user id Create was given, for the user-id flaws
}

func newBrokenStore(flaw string) *brokenStore {
	return &brokenStore{Store: memstore.New(), flaw: flaw, brokenData: &brokenData{
		shared: map[uuid.UUID]apikeys.Record{},
		owner:  map[uuid.UUID]string{},
	}}
}

// user is the user id as a flawed store compares it: folding case,
// dropping trailing spaces (as a PAD SPACE collation does) or normalizing
// "e" and a combining acute accent to "é".
func (s *brokenStore) user(u string) string {
	switch s.flaw {
	case "fold-user-case":
		return strings.ToLower(u)
	case "trim-user-space":
		return strings.TrimRight(u, " ")
	case "normalize-user":
		return strings.ReplaceAll(u, "e\u0301", "\u00e9")
	}
	return u
}

// restore gives back the user id rec was created with.
func (s *brokenStore) restore(rec *apikeys.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.owner[rec.ID]; ok {
		rec.UserID = u
	}
}

// context drops an expired deadline for the flaw that ignores deadlines
// (but not cancellation).
func (s *brokenStore) context(ctx context.Context) context.Context {
	if s.flaw == "ignores-deadline" && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (s *brokenStore) Create(ctx context.Context, rec apikeys.Record) error {
	ctx = s.context(ctx)
	switch s.flaw {
	case "successor-not-created":
		rec.SuccessorID = uuid.UUID{}
	case "scopes-not-created":
		rec.Scopes = nil
	case "ips-not-created":
		rec.AllowedIPs = nil
	case "disabled-not-created":
		rec.Disabled = false
	case "limits-not-created":
		rec.RateLimit, rec.Credits = nil, nil
	}
	if s.flaw == "overwrite-duplicate" {
		if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
			_ = s.Store.Delete(ctx, cur.UserID, cur.ID)
		}
	}
	if u := s.user(rec.UserID); u != rec.UserID {
		s.mu.Lock()
		s.owner[rec.ID] = rec.UserID
		s.mu.Unlock()
		rec.UserID = u
	}
	return s.Store.Create(ctx, rec)
}

func (s *brokenStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	ctx = s.context(ctx)
	if s.flaw == "canceled-is-not-found" && ctx.Err() != nil {
		return apikeys.Record{}, apikeys.ErrNotFound
	}
	rec, err := s.Store.Get(ctx, id)
	if err == nil {
		s.restore(&rec)
	}
	switch s.flaw {
	case "seconds":
		rec.CreatedAt = rec.CreatedAt.Truncate(time.Second)
	case "shared-results":
		s.mu.Lock()
		defer s.mu.Unlock()
		if prev, ok := s.shared[id]; ok && err == nil {
			return prev, nil
		}
		s.shared[id] = rec
	}
	return rec, err
}

func (s *brokenStore) List(ctx context.Context, userID string, q apikeys.ListQuery) ([]apikeys.Record, error) {
	ctx = s.context(ctx)
	recs, err := s.Store.List(ctx, s.user(userID), q)
	for i := range recs {
		s.restore(&recs[i])
	}
	if s.flaw == "oldest-first" {
		slices.Reverse(recs)
	}
	return recs, err
}

func (s *brokenStore) Update(ctx context.Context, rec apikeys.Record) error {
	ctx = s.context(ctx)
	rec.UserID = s.user(rec.UserID)
	if s.flaw == "no-version-check" {
		if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
			rec.Version = cur.Version + 1
		}
	}
	if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
		switch s.flaw {
		case "successor-not-updated":
			rec.SuccessorID = cur.SuccessorID
		case "scopes-not-updated":
			rec.Scopes = cur.Scopes
		case "ips-not-updated":
			rec.AllowedIPs = cur.AllowedIPs
		case "disabled-not-updated":
			rec.Disabled = cur.Disabled
		case "lists-not-cleared":
			// A store that writes a list only when it has entries, as
			// an HSET of the non-empty fields would.
			if len(rec.Scopes) == 0 {
				rec.Scopes = cur.Scopes
			}
			if len(rec.AllowedIPs) == 0 {
				rec.AllowedIPs = cur.AllowedIPs
			}
		case "disabled-not-cleared":
			// A store that writes the flag only when it is set.
			rec.Disabled = rec.Disabled || cur.Disabled
		}
	}
	if s.flaw == "update-overwrites-counters" {
		// A store that writes the whole record, counters included.
		if err := s.Store.Update(ctx, rec); err != nil {
			return err
		}
		cur, err := s.Store.Get(ctx, rec.ID)
		if err != nil {
			return err
		}
		cur.Usage, cur.Credits = rec.Usage, rec.Credits
		if err := s.Store.Delete(ctx, cur.UserID, cur.ID); err != nil {
			return err
		}
		return s.Store.Create(ctx, cur)
	}
	if err := s.Store.Update(ctx, rec); err != nil || s.flaw != "update-rewinds-last-used" {
		return err
	}
	// Write rec's LastUsedAt as is, as a store that replaces the whole
	// record does.
	return s.set(ctx, rec.ID, rec.LastUsedAt)
}

// set sets the LastUsedAt of the record with the id, moving it back if need
// be (memstore never does): a delete and a create.
func (s *brokenStore) set(ctx context.Context, id uuid.UUID, lastUsed time.Time) error {
	cur, err := s.Store.Get(ctx, id)
	if err != nil || cur.LastUsedAt.Equal(lastUsed) {
		return nil
	}
	cur.LastUsedAt = lastUsed
	if err := s.Store.Delete(ctx, cur.UserID, cur.ID); err != nil {
		return err
	}
	return s.Store.Create(ctx, cur)
}

func (s *brokenStore) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	ctx = s.context(ctx)
	if s.flaw == "delete-any-user" {
		if cur, err := s.Store.Get(ctx, id); err == nil {
			userID = cur.UserID
		}
	}
	return s.Store.Delete(ctx, s.user(userID), id)
}

func (s *brokenStore) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	ctx = s.context(ctx)
	if s.flaw != "touch-moves-back" || ctx.Err() != nil {
		return s.Store.TouchLastUsed(ctx, uses)
	}
	for _, u := range uses {
		if err := s.set(ctx, u.ID, u.At); err != nil {
			return err
		}
	}
	return nil
}

func (s *brokenStore) Spend(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	ctx = s.context(ctx)
	switch s.flaw {
	case "spend-ignores-digest":
		if cur, err := s.Store.Get(ctx, q.ID); err == nil {
			q.Digest = cur.Digest
		}
	case "spend-uses-own-clock":
		q.Now += 30
	}
	return s.Store.Spend(ctx, q)
}

func (s *brokenStore) Refund(ctx context.Context, q apikeys.RefundRequest) error {
	ctx = s.context(ctx)
	if s.flaw == "refund-any-window" {
		if cur, err := s.Store.Get(ctx, q.ID); err == nil {
			q.WindowStart, q.RefilledAt = cur.Usage.WindowStart, cur.Usage.RefilledAt
		}
	}
	return s.Store.Refund(ctx, q)
}

// reopen returns another handle on the data of s, or, for the flaw, a
// store of its own.
func (s *brokenStore) reopen() *brokenStore {
	if s.flaw == "reopen-not-shared" {
		return newBrokenStore(s.flaw)
	}
	other := *s
	return &other
}

// TestBrokenStore runs the suite on one broken store; it is meant to fail,
// and only runs inside TestSuiteCatchesFlaws.
func TestBrokenStore(t *testing.T) {
	flaw := os.Getenv("STORETEST_FLAW")
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesFlaws")
	}
	if flaw == "viewer-in-place" {
		storetest.Run(t, func(*testing.T) apikeys.Store {
			return &inPlaceViewer{Store: memstore.New(), shared: map[uuid.UUID]*apikeys.Shared{}}
		})
		return
	}
	storetest.RunConfig(t, func(*testing.T) apikeys.Store { return newBrokenStore(flaw) }, storetest.Config{
		Reopen: func(_ *testing.T, s apikeys.Store) apikeys.Store { return s.(*brokenStore).reopen() },
	})
}

func TestSuiteCatchesFlaws(t *testing.T) {
	t.Parallel()
	if os.Getenv("STORETEST_FLAW") != "" {
		t.Skip("inside a child run")
	}
	for flaw, failing := range map[string]string{
		"seconds":               "RoundTripEveryField",
		"shared-results":        "ReturnsCopies",
		"oldest-first":          "Pagination",
		"no-version-check":      "UpdateConflict",
		"delete-any-user":       "TenantIsolation",
		"overwrite-duplicate":   "CreateDuplicate",
		"canceled-is-not-found": "CanceledContext",
		"successor-not-created": "RoundTripEveryField",
		"successor-not-updated": "SuccessorID",
		// The restrictions of issue 12: a store that drops one fails open.
		"scopes-not-created":   "RoundTripEveryField",
		"ips-not-created":      "RoundTripEveryField",
		"disabled-not-created": "RoundTripEveryField",
		"scopes-not-updated":   "Restrictions",
		"ips-not-updated":      "Restrictions",
		"disabled-not-updated": "Restrictions",
		"lists-not-cleared":    "Restrictions",
		"disabled-not-cleared": "Restrictions",
		// The cases of issue 11.
		"update-rewinds-last-used": "UpdateKeepsLastUsed",
		"touch-moves-back":         "InstancesTouchConcurrently",
		"reopen-not-shared":        "InstancesShareData",
		"fold-user-case":           "UserIDsCompareExactly",
		"trim-user-space":          "UserIDsCompareExactly",
		"normalize-user":           "UserIDsCompareExactly",
		"ignores-deadline":         "ExpiredDeadline",
		// The counters of issue 13.
		"limits-not-created":         "RoundTripEveryField",
		"update-overwrites-counters": "UpdateKeepsCounters",
		"spend-ignores-digest":       "SpendWrongDigest",
		"spend-uses-own-clock":       "SpendMatchesCharge",
		"refund-any-window":          "Refund",
		// Issue 17: a Viewer must never change a Shared it handed out.
		"viewer-in-place": "Viewer",
	} {
		t.Run(flaw, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokenStore$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_FLAW="+flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite passed a store with flaw %q (err %v):\n%s", flaw, err, out)
			}
			if want := "--- FAIL: TestBrokenStore/" + failing; !strings.Contains(string(out), want) {
				t.Fatalf("flaw %q: output lacks %q:\n%s", flaw, want, out)
			}
		})
	}
}

func TestMemstorePasses(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) apikeys.Store { return memstore.New() })
}

// inPlaceViewer is memstore made a Viewer that breaks the contract: it
// keeps one Shared per record, and writes each change into it in place,
// under the feet of whoever read it.
type inPlaceViewer struct {
	*memstore.Store
	mu     sync.Mutex
	shared map[uuid.UUID]*apikeys.Shared
}

func (s *inPlaceViewer) ViewerOf() apikeys.Store { return s }

func (s *inPlaceViewer) View(ctx context.Context, id uuid.UUID) (*apikeys.Shared, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh := s.shared[id]; sh != nil {
		*sh.Record() = *apikeys.Share(&rec).Record() // the flaw
		return sh, nil
	}
	sh := apikeys.Share(&rec)
	s.shared[id] = sh
	return sh, nil
}
