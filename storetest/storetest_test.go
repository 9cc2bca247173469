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
// that the suite catches it.
type brokenStore struct {
	*memstore.Store
	flaw string

	mu     sync.Mutex
	shared map[uuid.UUID]apikeys.Record
}

func (s *brokenStore) Create(ctx context.Context, rec apikeys.Record) error {
	if s.flaw == "successor-not-created" {
		rec.SuccessorID = uuid.UUID{}
	}
	if s.flaw == "overwrite-duplicate" {
		if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
			_ = s.Store.Delete(ctx, cur.UserID, cur.ID)
		}
	}
	return s.Store.Create(ctx, rec)
}

func (s *brokenStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	if s.flaw == "canceled-is-not-found" && ctx.Err() != nil {
		return apikeys.Record{}, apikeys.ErrNotFound
	}
	rec, err := s.Store.Get(ctx, id)
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
	recs, err := s.Store.List(ctx, userID, q)
	if s.flaw == "oldest-first" {
		slices.Reverse(recs)
	}
	return recs, err
}

func (s *brokenStore) Update(ctx context.Context, rec apikeys.Record) error {
	if s.flaw == "no-version-check" {
		if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
			rec.Version = cur.Version + 1
		}
	}
	if s.flaw == "successor-not-updated" {
		if cur, err := s.Store.Get(ctx, rec.ID); err == nil {
			rec.SuccessorID = cur.SuccessorID
		}
	}
	return s.Store.Update(ctx, rec)
}

func (s *brokenStore) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	if s.flaw == "delete-any-user" {
		if cur, err := s.Store.Get(ctx, id); err == nil {
			userID = cur.UserID
		}
	}
	return s.Store.Delete(ctx, userID, id)
}

// TestBrokenStore runs the suite on one broken store; it is meant to fail,
// and only runs inside TestSuiteCatchesFlaws.
func TestBrokenStore(t *testing.T) {
	flaw := os.Getenv("STORETEST_FLAW")
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesFlaws")
	}
	storetest.Run(t, func(*testing.T) apikeys.Store {
		return &brokenStore{Store: memstore.New(), flaw: flaw, shared: map[uuid.UUID]apikeys.Record{}}
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
