package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyward/apikeys"
)

// testViewer checks a store that implements apikeys.Viewer (skipped for
// others): View answers what Get does, honours its context, and a Shared
// it returned never changes afterwards, whatever the store does to the
// record (Update, Spend, Refund, TouchLastUsed, Delete): a change stores a
// new one, as the Viewer contract requires, since Authorize and the
// verification cache read Shared records in place without a lock.
func testViewer(t *testing.T, s apikeys.Store) {
	v, ok := s.(apikeys.Viewer)
	if !ok {
		t.Skip("not a Viewer")
	}
	if v.ViewerOf() != s {
		t.Fatalf("ViewerOf() = %T %p, want the store itself %p", v.ViewerOf(), v.ViewerOf(), s)
	}
	if _, err := v.View(ctx(t), newID(t)); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("View of a missing id: %v, want ErrNotFound", err)
	}
	rec := limited(t, &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}, &apikeys.Credits{Remaining: 10})
	mustCreate(t, s, rec)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.View(c, rec.ID); err == nil || errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("View with a canceled context: %v, want its error", err)
	}

	view := func(what string) (*apikeys.Shared, apikeys.Record) {
		t.Helper()
		sh, err := v.View(ctx(t), rec.ID)
		if err != nil {
			t.Fatalf("View %s: %v", what, err)
		}
		got := *sh.Record()
		wantEqual(t, "View "+what, got, mustGet(t, s, rec.ID))
		return sh, deepCopy(got)
	}
	// Each step changes the record; the Shared viewed before it must not
	// change, and a new View must show the change.
	steps := []struct {
		name string
		do   func() error
	}{
		{"Spend", func() error {
			_, _, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 3, Now: at.Unix()})
			return err
		}},
		{"Refund", func() error {
			cur := mustGet(t, s, rec.ID)
			return s.Refund(ctx(t), apikeys.RefundRequest{ID: rec.ID, Cost: 1, Version: cur.Version, WindowStart: cur.Usage.WindowStart, RefilledAt: cur.Usage.RefilledAt})
		}},
		{"TouchLastUsed", func() error {
			return s.TouchLastUsed(ctx(t), []apikeys.Use{{ID: rec.ID, At: at.Add(3 * time.Hour)}})
		}},
		{"Update", func() error {
			up := mustGet(t, s, rec.ID)
			up.Name, up.Version = "renamed", up.Version+1
			up.AllowedOrigins = []string{"https://changed.example"}
			up.Scopes = []string{"calls:write"}
			return s.Update(ctx(t), up)
		}},
	}
	for _, st := range steps {
		before, snapshot := view("before " + st.name)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		wantEqual(t, "a Shared viewed before "+st.name, *before.Record(), snapshot)
		after, _ := view("after " + st.name)
		if after == before {
			t.Fatalf("%s changed the record but View returns the same Shared", st.name)
		}
	}
	before, snapshot := view("before Delete")
	if err := s.Delete(ctx(t), rec.UserID, rec.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantEqual(t, "a Shared viewed before Delete", *before.Record(), snapshot)
	if _, err := v.View(ctx(t), rec.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("View after Delete: %v, want ErrNotFound", err)
	}
}

// deepCopy returns rec with lists and limits of its own.
func deepCopy(rec apikeys.Record) apikeys.Record {
	return *apikeys.Share(&rec).Record()
}
