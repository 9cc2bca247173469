// Package storetest is the conformance suite for apikeys.Store
// implementations. A store package runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apikeys.Store { return newTestStore(t) })
//	}
//
// Every subtest gets a fresh store from the factory and runs in parallel
// with the others, so the factory must give each call its own namespace
// (a table, a key prefix) and register its clean-up with t.Cleanup.
//
// # Several instances
//
// Services run several instances on one database or one Redis, each with
// its own store value, its own connections and its own prepared
// statements. Some subtests (their names start with "Instances") check
// what only shows then, such as two instances flushing last-used times of
// the same keys at once. A store that can open a second handle on the data
// of a store it made says how with RunConfig:
//
//	storetest.RunConfig(t, newTestStore, storetest.Config{
//		Reopen: func(t *testing.T, s apikeys.Store) apikeys.Store {
//			// a new client or pool, on the same server, namespace or table as s
//		},
//	})
//
// Without Reopen (Run, or a zero Config) those subtests use the store value
// from the factory for both instances, which is all an in-process store
// such as memstore can offer.
//
// The suite uses only the standard testing package, so that store packages
// can import it without pulling in test dependencies. It reports failures
// only from the test goroutine: its own goroutines collect errors, which
// the test checks after waiting for them.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/keyward/apikeys"
)

// Config tells the suite what it may do with a store beyond the methods
// of apikeys.Store. The zero value is valid.
type Config struct {
	// Reopen returns a second handle on the data of s, a store the
	// factory made for the same subtest: what another instance of a
	// service would have, with its own connections (a new Redis client
	// or *sql.DB pool, say) on the same server and namespace or table.
	// Writes through either handle must be seen through the other. It
	// registers its clean-up with t.Cleanup; the suite may call it more
	// than once per store. Nil: the store value itself serves as the
	// second instance.
	Reopen func(t *testing.T, s apikeys.Store) apikeys.Store
}

// Run runs the conformance suite against stores made by newStore, with
// the zero Config.
func Run(t *testing.T, newStore func(t *testing.T) apikeys.Store) {
	t.Helper()
	RunConfig(t, newStore, Config{})
}

// RunConfig runs the conformance suite against stores made by newStore,
// as cfg allows.
func RunConfig(t *testing.T, newStore func(t *testing.T) apikeys.Store, cfg Config) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s apikeys.Store)
	}{
		{"RoundTripEveryField", testRoundTrip},
		{"RoundTripEmptyFields", testRoundTripEmpty},
		{"GetMissing", testGetMissing},
		{"CreateDuplicate", testCreateDuplicate},
		{"Update", testUpdate},
		{"SuccessorID", testSuccessorID},
		{"Restrictions", testRestrictions},
		{"UpdateConflict", testUpdateConflict},
		{"UpdateMissingOrDeleted", testUpdateMissing},
		{"Delete", testDelete},
		{"DeleteTwice", testDeleteTwice},
		{"Pagination", testPagination},
		{"ListEmpty", testListEmpty},
		{"TenantIsolation", testTenantIsolation},
		{"UserIDsCompareExactly", testUserIDsExact},
		{"ReturnsCopies", testReturnsCopies},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentDeletes", testConcurrentDeletes},
		{"CanceledContext", testCanceledContext},
		{"ExpiredDeadline", testExpiredDeadline},
		{"NoKeyValueStored", testNoKeyValue},
		{"TouchLastUsed", testTouchLastUsed},
		{"UpdateKeepsLastUsed", testUpdateKeepsLastUsed},
		{"Limits", testLimits},
		{"SpendUnlimited", testSpendUnlimited},
		{"SpendMissing", testSpendMissing},
		{"SpendWrongDigest", testSpendWrongDigest},
		{"SpendRateLimit", testSpendRateLimit},
		{"SpendCredits", testSpendCredits},
		{"SpendRefusedChangesNothing", testSpendRefused},
		{"SpendMatchesCharge", testSpendMatchesCharge},
		{"Refund", testRefund},
		{"UpdateKeepsCounters", testUpdateKeepsCounters},
		{"WindowChangeKeepsCount", testWindowChange},
		{"ConcurrentSpends", testConcurrentSpends},
		{"Viewer", testViewer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
	// Subtests with two instances on the same data.
	instances := []struct {
		name string
		fn   func(t *testing.T, a, b apikeys.Store)
	}{
		{"InstancesShareData", testInstancesShareData},
		{"InstancesTouchConcurrently", testInstancesTouch},
		{"InstancesUpdateAfterTouch", testInstancesUpdateAfterTouch},
		{"InstancesSpendExactly", testInstancesSpend},
		{"ManagersAuthorizeExactly", testManagersExact},
	}
	for _, tt := range instances {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newStore(t)
			b := a
			if cfg.Reopen != nil {
				b = cfg.Reopen(t, a)
			}
			tt.fn(t, a, b)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// at is a fixed instant with microsecond precision, the precision every
// store must keep.
var at = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// newID returns a new UUIDv7.
func newID(t *testing.T) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// record returns a new record of user with every field set, and every
// boolean at the value that is not its zero (Disabled too: a store that
// drops it must be caught).
func record(t *testing.T, user string) apikeys.Record {
	t.Helper()
	id := newID(t)
	var d apikeys.Digest
	if _, err := rand.Read(d[:]); err != nil {
		t.Fatal(err)
	}
	return apikeys.Record{
		Key: apikeys.Key{
			ID:                 id,
			Type:               apikeys.Public,
			Name:               "web widget ✓ " + id.String()[:8],
			AllowedOrigins:     []string{"https://app.example.com", "https://*.example.org:8443"},
			AllowedAssistants:  []string{"asst_1", "asst:2.b-c"},
			TransientAssistant: true,
			Scopes:             []string{"calls:read", "api_keys:*"},
			AllowedIPs:         []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::7/128")},
			Disabled:           true,
			UserID:             user,
			UserEmail:          user + "@example.com",
			Hint:               "ak_pk_...x9Yz",
			CreatedAt:          at,
			UpdatedAt:          at.Add(time.Second),
			ExpiresAt:          at.Add(90 * 24 * time.Hour),
			LastUsedAt:         at.Add(time.Minute),
			SuccessorID:        newID(t),
			RateLimit:          &apikeys.RateLimit{Limit: 100, WindowSeconds: 60},
			Credits:            &apikeys.Credits{Remaining: 900, Refill: &apikeys.Refill{Amount: 1000, IntervalSeconds: 86400}},
			Usage:              apikeys.Usage{WindowStart: at.Unix() - at.Unix()%60, WindowUsed: 7, RefilledAt: at.Unix() - 3600},
		},
		Digest:  d,
		Version: 1,
	}
}

func userName(t *testing.T) string {
	return "user-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + uuid.NewString()[:8]
}

func mustCreate(t *testing.T, s apikeys.Store, rec apikeys.Record) {
	t.Helper()
	if err := s.Create(ctx(t), rec); err != nil {
		t.Fatalf("Create(%s): %v", rec.ID, err)
	}
}

func mustGet(t *testing.T, s apikeys.Store, id uuid.UUID) apikeys.Record {
	t.Helper()
	rec, err := s.Get(ctx(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return rec
}

// diff describes how got differs from want, or returns "". Lists compare
// by their elements, so an empty list equals a nil one.
func diff(got, want apikeys.Record) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Type != want.Type {
		add("Type", got.Type, want.Type)
	}
	if got.Name != want.Name {
		add("Name", got.Name, want.Name)
	}
	if !slices.Equal(got.AllowedOrigins, want.AllowedOrigins) {
		add("AllowedOrigins", got.AllowedOrigins, want.AllowedOrigins)
	}
	if !slices.Equal(got.AllowedAssistants, want.AllowedAssistants) {
		add("AllowedAssistants", got.AllowedAssistants, want.AllowedAssistants)
	}
	if got.TransientAssistant != want.TransientAssistant {
		add("TransientAssistant", got.TransientAssistant, want.TransientAssistant)
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		add("Scopes", got.Scopes, want.Scopes)
	}
	if !slices.Equal(got.AllowedIPs, want.AllowedIPs) {
		add("AllowedIPs", got.AllowedIPs, want.AllowedIPs)
	}
	if got.Disabled != want.Disabled {
		add("Disabled", got.Disabled, want.Disabled)
	}
	if got.UserID != want.UserID {
		add("UserID", got.UserID, want.UserID)
	}
	if got.UserEmail != want.UserEmail {
		add("UserEmail", got.UserEmail, want.UserEmail)
	}
	if got.Hint != want.Hint {
		add("Hint", got.Hint, want.Hint)
	}
	if got.SuccessorID != want.SuccessorID {
		add("SuccessorID", got.SuccessorID, want.SuccessorID)
	}
	if g, w := fmtRateLimit(got.RateLimit), fmtRateLimit(want.RateLimit); g != w {
		add("RateLimit", g, w)
	}
	if g, w := fmtCredits(got.Credits), fmtCredits(want.Credits); g != w {
		add("Credits", g, w)
	}
	if got.Usage != want.Usage {
		add("Usage", got.Usage, want.Usage)
	}
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"LastUsedAt", got.LastUsedAt, want.LastUsedAt},
	} {
		if !tt.got.Equal(tt.want) {
			add(tt.name, tt.got, tt.want)
		}
		if !tt.got.IsZero() && tt.got.Location() != time.UTC {
			add(tt.name+" location", tt.got.Location(), time.UTC)
		}
	}
	if got.Digest != want.Digest {
		add("Digest", got.Digest, want.Digest)
	}
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	return strings.Join(d, "; ")
}

func wantEqual(t *testing.T, op string, got, want apikeys.Record) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Errorf("%s: record differs: %s", op, d)
	}
}

func testRoundTrip(t *testing.T, s apikeys.Store) {
	user := userName(t)
	rec := record(t, user)
	mustCreate(t, s, rec)
	wantEqual(t, "Get", mustGet(t, s, rec.ID), rec)
	list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("List: %d records, want 1", len(list))
	}
	wantEqual(t, "List", list[0], rec)
}

func testRoundTripEmpty(t *testing.T, s apikeys.Store) {
	rec := record(t, userName(t))
	rec.Type = apikeys.Private
	rec.AllowedOrigins, rec.AllowedAssistants = []string{}, nil
	rec.Scopes, rec.AllowedIPs = nil, []netip.Prefix{}
	rec.TransientAssistant, rec.Disabled = false, false
	rec.UserEmail = ""
	rec.ExpiresAt, rec.LastUsedAt = time.Time{}, time.Time{}
	rec.SuccessorID = uuid.UUID{}
	rec.RateLimit, rec.Credits, rec.Usage = nil, nil, apikeys.Usage{}
	rec.Name = strings.Repeat("n", apikeys.MaxNameLen)
	mustCreate(t, s, rec)
	got := mustGet(t, s, rec.ID)
	if len(got.AllowedOrigins) != 0 || len(got.AllowedAssistants) != 0 || len(got.Scopes) != 0 || len(got.AllowedIPs) != 0 {
		t.Errorf("lists = %q, %q, %q, %v, want empty", got.AllowedOrigins, got.AllowedAssistants, got.Scopes, got.AllowedIPs)
	}
	got.AllowedOrigins, got.AllowedAssistants = rec.AllowedOrigins, rec.AllowedAssistants
	got.Scopes, got.AllowedIPs = rec.Scopes, rec.AllowedIPs
	wantEqual(t, "Get", got, rec)
}

func testGetMissing(t *testing.T, s apikeys.Store) {
	_, err := s.Get(ctx(t), uuid.Must(uuid.NewV7()))
	if !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func testCreateDuplicate(t *testing.T, s apikeys.Store) {
	user := userName(t)
	rec := record(t, user)
	mustCreate(t, s, rec)
	dup := record(t, user)
	dup.ID = rec.ID
	dup.Name = "impostor"
	if err := s.Create(ctx(t), dup); !errors.Is(err, apikeys.ErrDuplicate) {
		t.Fatalf("Create(duplicate) = %v, want ErrDuplicate", err)
	}
	wantEqual(t, "Get after duplicate", mustGet(t, s, rec.ID), rec)
	list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("List after duplicate = %d records, %v; want 1", len(list), err)
	}
}

func testUpdate(t *testing.T, s apikeys.Store) {
	rec := record(t, userName(t))
	mustCreate(t, s, rec)
	up := rec
	up.Name = "renamed"
	up.AllowedOrigins = []string{"http://localhost:3000"}
	up.AllowedAssistants = nil
	up.TransientAssistant = false
	up.Scopes = []string{"calls:write"}
	up.AllowedIPs = nil
	up.Disabled = false
	up.ExpiresAt = time.Time{}
	up.LastUsedAt = at.Add(2 * time.Hour)
	up.UpdatedAt = at.Add(time.Hour)
	up.SuccessorID = newID(t)
	up.Version = 2
	if err := s.Update(ctx(t), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := mustGet(t, s, rec.ID)
	if len(got.AllowedAssistants) == 0 {
		got.AllowedAssistants = nil
	}
	if len(got.AllowedIPs) == 0 {
		got.AllowedIPs = nil
	}
	wantEqual(t, "Get after Update", got, up)
}

// wantOnly checks that Get of want.ID and a listing of want's user both
// return want, and that the listing holds nothing else.
func wantOnly(t *testing.T, s apikeys.Store, op string, want apikeys.Record) {
	t.Helper()
	wantEqual(t, "Get after "+op, mustGet(t, s, want.ID), want)
	list, err := s.List(ctx(t), want.UserID, apikeys.ListQuery{Limit: 10})
	if err != nil {
		t.Fatalf("List after %s: %v", op, err)
	}
	if len(list) != 1 {
		t.Fatalf("List after %s: %d records, want 1", op, len(list))
	}
	wantEqual(t, "List after "+op, list[0], want)
}

// testSuccessorID: SuccessorID is written by Create and by Update like
// every other field, whether it is set, changed, cleared or left zero.
func testSuccessorID(t *testing.T, s apikeys.Store) {
	a, b := newID(t), newID(t)
	tests := []struct {
		name            string
		created, update uuid.UUID
	}{
		{"zero stays zero", uuid.UUID{}, uuid.UUID{}},
		{"set by Update", uuid.UUID{}, a},
		{"set by Create, kept by Update", a, a},
		{"changed by Update", a, b},
		{"cleared by Update", a, uuid.UUID{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := record(t, userName(t))
			rec.SuccessorID = tt.created
			mustCreate(t, s, rec)
			wantOnly(t, s, "Create", rec)

			up := rec
			up.SuccessorID = tt.update
			up.UpdatedAt = at.Add(time.Hour)
			up.Version = 2
			if err := s.Update(ctx(t), up); err != nil {
				t.Fatalf("Update: %v", err)
			}
			wantOnly(t, s, "Update", up)
		})
	}
}

// testRestrictions: Scopes, AllowedIPs and Disabled, the restrictions of
// issue 12, are written by Create and by Update like every other field,
// whether they are set, changed, cleared or left empty. A store that drops
// one makes the restriction fail open: a disabled key works again, a
// scoped or address-bound key holds everything. Each case changes one
// field; the others keep the values Create wrote.
func testRestrictions(t *testing.T, s apikeys.Store) {
	read := []string{"calls:read"}
	write := []string{"calls:write", "assistants:*", "api_keys:read"}
	net4 := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	both := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("192.0.2.7/32")}
	type fields struct {
		scopes   []string
		ips      []netip.Prefix
		disabled bool
	}
	tests := []struct {
		name            string
		created, update fields
	}{
		{"none stays none", fields{}, fields{}},
		{"scopes set by Update", fields{}, fields{scopes: read}},
		{"scopes changed by Update", fields{scopes: read}, fields{scopes: write}},
		{"scopes cleared by Update", fields{scopes: write}, fields{}},
		{"addresses set by Update", fields{}, fields{ips: net4}},
		{"addresses changed by Update", fields{ips: net4}, fields{ips: both}},
		{"addresses cleared by Update", fields{ips: both}, fields{}},
		{"disabled by Update", fields{}, fields{disabled: true}},
		{"enabled again by Update", fields{disabled: true}, fields{}},
		{"disabled kept by Update", fields{disabled: true}, fields{disabled: true}},
		{"all set by Create, kept by Update", fields{read, net4, true}, fields{read, net4, true}},
		{"all set by Create, changed by Update", fields{read, net4, true}, fields{write, both, false}},
		{"all set by Create, cleared by Update", fields{write, both, true}, fields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := record(t, userName(t))
			rec.Scopes, rec.AllowedIPs, rec.Disabled = slices.Clone(tt.created.scopes), slices.Clone(tt.created.ips), tt.created.disabled
			mustCreate(t, s, rec)
			wantOnly(t, s, "Create", rec)

			up := rec
			up.Scopes, up.AllowedIPs, up.Disabled = slices.Clone(tt.update.scopes), slices.Clone(tt.update.ips), tt.update.disabled
			up.UpdatedAt = at.Add(time.Hour)
			up.Version = 2
			if err := s.Update(ctx(t), up); err != nil {
				t.Fatalf("Update: %v", err)
			}
			wantOnly(t, s, "Update", up)
		})
	}
}

func testUpdateConflict(t *testing.T, s apikeys.Store) {
	rec := record(t, userName(t))
	mustCreate(t, s, rec)
	for _, v := range []int64{1, 3, 0} {
		stale := rec
		stale.Name = "stale"
		stale.Version = v
		if err := s.Update(ctx(t), stale); !errors.Is(err, apikeys.ErrConflict) {
			t.Errorf("Update(version %d over stored 1) = %v, want ErrConflict", v, err)
		}
	}
	wantEqual(t, "Get after conflicts", mustGet(t, s, rec.ID), rec)
}

func testUpdateMissing(t *testing.T, s apikeys.Store) {
	user := userName(t)
	missing := record(t, user)
	missing.Version = 2
	if err := s.Update(ctx(t), missing); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Update(missing) = %v, want ErrNotFound", err)
	}
	rec := record(t, user)
	mustCreate(t, s, rec)
	if err := s.Delete(ctx(t), user, rec.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	rec.Version = 2
	if err := s.Update(ctx(t), rec); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Update(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx(t), rec.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Update of a deleted key brought it back: Get = %v", err)
	}
	if list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10}); err != nil || len(list) != 0 {
		t.Errorf("List after Update(deleted) = %d records, %v; want none", len(list), err)
	}
}

func testDelete(t *testing.T, s apikeys.Store) {
	user := userName(t)
	keep, gone := record(t, user), record(t, user)
	mustCreate(t, s, keep)
	mustCreate(t, s, gone)
	if err := s.Delete(ctx(t), user, gone.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx(t), gone.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
	list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || list[0].ID != keep.ID {
		t.Errorf("List after Delete = %v, want only %s", ids(list), keep.ID)
	}
	wantEqual(t, "Get(kept)", mustGet(t, s, keep.ID), keep)
}

func testDeleteTwice(t *testing.T, s apikeys.Store) {
	user := userName(t)
	rec := record(t, user)
	mustCreate(t, s, rec)
	if err := s.Delete(ctx(t), user, rec.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Delete(ctx(t), user, rec.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), user, uuid.Must(uuid.NewV7())); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("Delete(never existed) = %v, want ErrNotFound", err)
	}
}

func ids(recs []apikeys.Record) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testPagination(t *testing.T, s apikeys.Store) {
	user, other := userName(t), userName(t)
	var want []uuid.UUID
	for i := range 23 {
		rec := record(t, user)
		mustCreate(t, s, rec)
		want = append(want, rec.ID)
		if i%3 == 0 {
			mustCreate(t, s, record(t, other))
		}
	}
	slices.Reverse(want) // newest first
	for _, limit := range []int{1, 5, 7, 23, 50} {
		var got []uuid.UUID
		var before uuid.UUID
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
			page, err := s.List(ctx(t), user, apikeys.ListQuery{Before: before, Limit: limit})
			if err != nil {
				t.Fatalf("limit %d: List: %v", limit, err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d records", limit, len(page))
			}
			for _, r := range page {
				if r.UserID != user {
					t.Fatalf("limit %d: List(%s) returned a record of %s", limit, user, r.UserID)
				}
			}
			got = append(got, ids(page)...)
			if len(page) < limit {
				break
			}
			before = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged ids =\n%v\nwant (newest first, each once)\n%v", limit, got, want)
		}
	}
	// Before is exclusive: the page starts after the cursor.
	page, err := s.List(ctx(t), user, apikeys.ListQuery{Before: want[4], Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(page), want[5:8]) {
		t.Errorf("List(before %s) = %v, want %v", want[4], ids(page), want[5:8])
	}
}

func testListEmpty(t *testing.T, s apikeys.Store) {
	list, err := s.List(ctx(t), userName(t), apikeys.ListQuery{Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("List(no keys) = %d records, %v; want none, nil", len(list), err)
	}
}

func testTenantIsolation(t *testing.T, s apikeys.Store) {
	alice, bob := userName(t), userName(t)
	a, b := record(t, alice), record(t, bob)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	list, err := s.List(ctx(t), alice, apikeys.ListQuery{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("List(alice) = %v, %v; want only alice's key", ids(list), err)
	}
	steal := b
	steal.UserID = alice
	steal.Name = "stolen"
	steal.Version = 2
	if err := s.Update(ctx(t), steal); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Update(bob's key as alice) = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), alice, b.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Delete(bob's key as alice) = %v, want ErrNotFound", err)
	}
	wantEqual(t, "bob's key after alice's attempts", mustGet(t, s, b.ID), b)
	list, err = s.List(ctx(t), bob, apikeys.ListQuery{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("List(bob) = %v, %v; want only bob's key", ids(list), err)
	}
}

func testReturnsCopies(t *testing.T, s apikeys.Store) {
	user := userName(t)
	rec := record(t, user)
	in := rec
	in.AllowedOrigins = slices.Clone(rec.AllowedOrigins)
	in.AllowedAssistants = slices.Clone(rec.AllowedAssistants)
	in.Scopes = slices.Clone(rec.Scopes)
	in.AllowedIPs = slices.Clone(rec.AllowedIPs)
	mustCreate(t, s, in)
	in.AllowedOrigins[0] = "https://mutated-input.example"
	in.AllowedAssistants[0] = "mutated"
	in.Scopes[0] = "mutated:input"
	in.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0")

	got := mustGet(t, s, rec.ID)
	// The mutations below index the lists: a store that drops one fails
	// here rather than panics.
	if d := diff(got, rec); d != "" {
		t.Fatalf("Get: record differs: %s", d)
	}
	got.AllowedOrigins[0] = "https://mutated-get.example"
	got.AllowedAssistants[0] = "mutated"
	got.Scopes[0] = "mutated:get"
	got.AllowedIPs[0] = netip.MustParsePrefix("::/0")
	_ = append(got.AllowedOrigins[:1], "https://appended.example")
	_ = append(got.Scopes[:1], "appended:get")

	list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 1})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d, %v", len(list), err)
	}
	if d := diff(list[0], rec); d != "" {
		t.Fatalf("List: record differs: %s", d)
	}
	list[0].AllowedOrigins[1] = "https://mutated-list.example"
	list[0].Scopes[1] = "mutated:list"
	list[0].AllowedIPs[1] = netip.MustParsePrefix("0.0.0.0/0")
	wantEqual(t, "Get after mutating results", mustGet(t, s, rec.ID), rec)
}

const workers = 8

// errorList collects errors from goroutines, for the test goroutine to
// report after waiting for them: the suite reports failures only from the
// test goroutine.
type errorList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorList) add(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Errorf(format, args...))
	l.mu.Unlock()
}

// report fails t with the collected errors, the first few of them in
// full. Call it after the goroutines are done.
func (l *errorList) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	const shown = 5
	for i, err := range l.errs {
		if i == shown {
			t.Errorf("... and %d more errors", len(l.errs)-shown)
			break
		}
		t.Error(err)
	}
}

func testConcurrentCreates(t *testing.T, s apikeys.Store) {
	user := userName(t)
	const each = 10
	recs := make([][]apikeys.Record, workers)
	for w := range recs {
		for range each {
			recs[w] = append(recs[w], record(t, user))
		}
	}
	c := ctx(t)
	var errs errorList
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for _, rec := range recs[w] {
				if err := s.Create(c, rec); err != nil {
					errs.add("concurrent Create: %w", err)
				}
			}
		})
	}
	wg.Wait()
	errs.report(t)
	list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: workers*each + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != workers*each {
		t.Fatalf("after %d concurrent creates List has %d", workers*each, len(list))
	}
	if !slices.IsSortedFunc(list, func(a, b apikeys.Record) int { return strings.Compare(b.ID.String(), a.ID.String()) }) {
		t.Errorf("List not newest first: %v", ids(list))
	}
}

// testConcurrentUpdates races read-modify-write loops on one record: every
// successful update must survive (the version counts them) and each loser
// must see ErrConflict, never a silent overwrite.
func testConcurrentUpdates(t *testing.T, s apikeys.Store) {
	rec := record(t, userName(t))
	mustCreate(t, s, rec)
	const each = 10
	const maxTries = 100 * workers * each // a fair store needs about workers*each
	c := ctx(t)
	var ok atomic.Int64
	var errs errorList
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for done, tries := 0, 0; done < each; tries++ {
				if tries == maxTries {
					errs.add("worker %d: %d of %d updates done after %d tries: the store makes no progress", w, done, each, tries)
					return
				}
				cur, err := s.Get(c, rec.ID)
				if err != nil {
					errs.add("Get: %w", err)
					return
				}
				cur.Version++
				cur.AllowedAssistants = append(cur.AllowedAssistants, fmt.Sprintf("w%d-%d", w, done))
				switch err := s.Update(c, cur); {
				case err == nil:
					ok.Add(1)
					done++
				case errors.Is(err, apikeys.ErrConflict):
				default:
					errs.add("Update: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	errs.report(t)
	got := mustGet(t, s, rec.ID)
	if got.Version != 1+ok.Load() {
		t.Errorf("version %d after %d successful updates, want %d", got.Version, ok.Load(), 1+ok.Load())
	}
	if want := len(rec.AllowedAssistants) + workers*each; len(got.AllowedAssistants) != want {
		t.Errorf("%d assistants after %d appends, want %d: an update was lost", len(got.AllowedAssistants), workers*each, want)
	}
}

func testConcurrentDeletes(t *testing.T, s apikeys.Store) {
	user := userName(t)
	rec := record(t, user)
	mustCreate(t, s, rec)
	c := ctx(t)
	var ok, notFound atomic.Int64
	var errs errorList
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			switch err := s.Delete(c, user, rec.ID); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, apikeys.ErrNotFound):
				notFound.Add(1)
			default:
				errs.add("Delete: %w", err)
			}
		})
	}
	wg.Wait()
	errs.report(t)
	if ok.Load() != 1 || notFound.Load() != workers-1 {
		t.Errorf("%d concurrent deletes: %d succeeded, %d not found; want 1 and %d", workers, ok.Load(), notFound.Load(), workers-1)
	}
}

func testCanceledContext(t *testing.T, s apikeys.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	testDoneContext(t, s, c)
}

// testExpiredDeadline: a context whose deadline has passed is done like a
// canceled one, with context.DeadlineExceeded.
func testExpiredDeadline(t *testing.T, s apikeys.Store) {
	c, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)
	testDoneContext(t, s, c)
}

// testDoneContext calls every method with c, which is done: each must fail
// with an error that wraps c.Err() and is not ErrNotFound (a store that
// cannot answer has not found that a key is missing), and write nothing.
func testDoneContext(t *testing.T, s apikeys.Store, c context.Context) {
	user := userName(t)
	rec := record(t, user)
	mustCreate(t, s, rec)
	fresh := record(t, user)
	ops := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return s.Create(c, fresh) }},
		{"Get", func() error { _, err := s.Get(c, rec.ID); return err }},
		{"GetMissing", func() error { _, err := s.Get(c, fresh.ID); return err }},
		{"List", func() error { _, err := s.List(c, user, apikeys.ListQuery{Limit: 10}); return err }},
		{"ListBefore", func() error { _, err := s.List(c, user, apikeys.ListQuery{Before: fresh.ID, Limit: 10}); return err }},
		{"Update", func() error { up := rec; up.Name, up.Version = "changed", 2; return s.Update(c, up) }},
		{"UpdateMissing", func() error { up := fresh; up.Version = 2; return s.Update(c, up) }},
		{"Delete", func() error { return s.Delete(c, user, rec.ID) }},
		{"DeleteMissing", func() error { return s.Delete(c, user, fresh.ID) }},
		{"TouchLastUsed", func() error {
			return s.TouchLastUsed(c, []apikeys.Use{{ID: rec.ID, At: rec.LastUsedAt.Add(time.Hour)}})
		}},
		{"TouchLastUsedNone", func() error { return s.TouchLastUsed(c, nil) }},
		{"Spend", func() error {
			_, _, err := s.Spend(c, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: at.Unix()})
			return err
		}},
		{"SpendMissing", func() error {
			_, _, err := s.Spend(c, apikeys.SpendRequest{ID: fresh.ID, Digest: fresh.Digest, Cost: 1, Now: at.Unix()})
			return err
		}},
		{"Refund", func() error {
			return s.Refund(c, apikeys.RefundRequest{ID: rec.ID, Cost: 1, Version: rec.Version, WindowStart: rec.Usage.WindowStart, RefilledAt: rec.Usage.RefilledAt})
		}},
	}
	for _, op := range ops {
		switch err := op.call(); {
		case err == nil:
			t.Errorf("%s with a done context (%v) succeeded", op.name, c.Err())
		case errors.Is(err, apikeys.ErrNotFound):
			t.Errorf("%s with a done context = %v; a store failure must not look like ErrNotFound", op.name, err)
		case !errors.Is(err, c.Err()):
			t.Errorf("%s with a done context = %v, want an error wrapping %v", op.name, err, c.Err())
		}
	}
	wantEqual(t, "Get after writes with a done context", mustGet(t, s, rec.ID), rec)
	if _, err := s.Get(ctx(t), fresh.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("a Create with a done context stored the record (Get = %v)", err)
	}
}

// testNoKeyValue creates keys through a Manager and checks that nothing the
// store returns holds the key value or any 12-character piece of it beyond
// the public prefix.
func testNoKeyValue(t *testing.T, s apikeys.Store) {
	m, err := apikeys.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	user := userName(t)
	for _, typ := range []apikeys.KeyType{apikeys.Private, apikeys.Public} {
		nk, err := m.Create(ctx(t), apikeys.CreateParams{Type: typ, Name: "secret check", UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		rec := mustGet(t, s, nk.ID)
		js, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		dump := fmt.Sprintf("%+v %s %x", rec, js, rec.Digest)
		body := nk.Value[len(m.Prefix())+4:]
		for i := 0; i+12 <= len(body); i++ {
			if strings.Contains(dump, body[i:i+12]) {
				t.Fatalf("the stored record holds %q, a piece of the key value", body[i:i+12])
			}
		}
	}
}

func testTouchLastUsed(t *testing.T, s apikeys.Store) {
	user := userName(t)
	newer, older, never, twice := record(t, user), record(t, user), record(t, user), record(t, user)
	never.LastUsedAt = time.Time{}
	for _, r := range []apikeys.Record{newer, older, never, twice} {
		mustCreate(t, s, r)
	}
	gone := record(t, user)
	mustCreate(t, s, gone)
	if err := s.Delete(ctx(t), user, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchLastUsed(ctx(t), nil); err != nil {
		t.Fatalf("TouchLastUsed(no uses) = %v", err)
	}
	err := s.TouchLastUsed(ctx(t), []apikeys.Use{
		{ID: newer.ID, At: newer.LastUsedAt.Add(time.Hour)},
		{ID: older.ID, At: older.LastUsedAt.Add(-time.Hour)},
		{ID: never.ID, At: at.Add(3 * time.Hour)},
		{ID: gone.ID, At: at.Add(time.Hour)},
		{ID: uuid.Must(uuid.NewV7()), At: at},
		{ID: twice.ID, At: twice.LastUsedAt.Add(2 * time.Hour)},
		{ID: twice.ID, At: twice.LastUsedAt.Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("TouchLastUsed: %v", err)
	}
	want := newer
	want.LastUsedAt = newer.LastUsedAt.Add(time.Hour)
	wantEqual(t, "a later use", mustGet(t, s, newer.ID), want)
	wantEqual(t, "an earlier use changes nothing", mustGet(t, s, older.ID), older)
	want = never
	want.LastUsedAt = at.Add(3 * time.Hour)
	wantEqual(t, "a first use", mustGet(t, s, never.ID), want)
	want = twice
	want.LastUsedAt = twice.LastUsedAt.Add(2 * time.Hour)
	wantEqual(t, "two uses of one key, the later first", mustGet(t, s, twice.ID), want)
	if _, err := s.Get(ctx(t), gone.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("TouchLastUsed brought back a deleted key: Get = %v", err)
	}
	// The version is untouched, so an Update based on an earlier read
	// still succeeds, and keeps the later LastUsedAt.
	up := newer
	up.Name, up.Version = "renamed", 2
	if err := s.Update(ctx(t), up); err != nil {
		t.Fatalf("Update after TouchLastUsed: %v", err)
	}
	up.LastUsedAt = newer.LastUsedAt.Add(time.Hour)
	wantEqual(t, "Get after an Update based on a read before TouchLastUsed", mustGet(t, s, newer.ID), up)
}

// testUserIDsExact: user ids that differ only in case, in trailing or
// leading space, or in Unicode normalization form are different users.
// A key of one is not listed, updated or deleted through another (as a
// case-insensitive or space-padding collation, or normalizing the ids,
// would allow).
func testUserIDsExact(t *testing.T, s apikeys.Store) {
	base := userName(t) + ":"
	variants := []string{
		"tenant", "Tenant", "TENANT",
		"tenant ", " tenant", "tenant\t",
		"caf\u00e9",  // é, NFC
		"cafe\u0301", // e and a combining acute accent, NFD
		"CAF\u00c9",
	}
	users := make([]string, len(variants))
	recs := make([]apikeys.Record, len(variants))
	for i, v := range variants {
		users[i] = base + v
		recs[i] = record(t, users[i])
		mustCreate(t, s, recs[i])
	}
	for i, u := range users {
		list, err := s.List(ctx(t), u, apikeys.ListQuery{Limit: 10})
		if err != nil {
			t.Fatalf("List(%q): %v", u, err)
		}
		if len(list) != 1 || list[0].ID != recs[i].ID || list[0].UserID != u {
			t.Errorf("List(%q) = %v, want only its own key %s", u, ids(list), recs[i].ID)
		}
		for j, other := range recs {
			if j == i {
				continue
			}
			steal := other
			steal.UserID = u
			steal.Name = "stolen"
			steal.Version = 2
			if err := s.Update(ctx(t), steal); !errors.Is(err, apikeys.ErrNotFound) {
				t.Errorf("Update(%q's key as %q) = %v, want ErrNotFound", other.UserID, u, err)
			}
			if err := s.Delete(ctx(t), u, other.ID); !errors.Is(err, apikeys.ErrNotFound) {
				t.Errorf("Delete(%q's key as %q) = %v, want ErrNotFound", other.UserID, u, err)
			}
		}
	}
	for _, rec := range recs {
		wantEqual(t, fmt.Sprintf("Get(key of %q) after the other users' attempts", rec.UserID), mustGet(t, s, rec.ID), rec)
	}
}

// testUpdateKeepsLastUsed: an Update never moves LastUsedAt back or
// clears it. The Manager updates a record it read earlier, and a
// TouchLastUsed batch (of this instance or another) may have come in
// between: the stored value then is the later one, whatever the Update
// carries.
func testUpdateKeepsLastUsed(t *testing.T, s apikeys.Store) {
	updateKeepsLastUsed(t, s, s)
}

// testInstancesUpdateAfterTouch is testUpdateKeepsLastUsed with the
// TouchLastUsed batch written by another instance.
func testInstancesUpdateAfterTouch(t *testing.T, a, b apikeys.Store) {
	updateKeepsLastUsed(t, a, b)
}

// updateKeepsLastUsed reads a record through s, lets toucher record a
// later use, then updates the record through s with several LastUsedAt.
func updateKeepsLastUsed(t *testing.T, s, toucher apikeys.Store) {
	touched := at.Add(2 * time.Hour)
	tests := []struct {
		name          string
		stored        time.Time // LastUsedAt at Create
		touch         time.Time // a use recorded after the read; zero: none
		written, want time.Time
	}{
		{"zero after a touch", at.Add(time.Minute), touched, time.Time{}, touched},
		{"read value after a touch", at.Add(time.Minute), touched, at.Add(time.Minute), touched},
		{"earlier after a touch", at.Add(time.Minute), touched, at, touched},
		{"later after a touch", at.Add(time.Minute), touched, touched.Add(time.Hour), touched.Add(time.Hour)},
		{"zero after a first touch", time.Time{}, touched, time.Time{}, touched},
		{"zero without a touch", at.Add(time.Minute), time.Time{}, time.Time{}, at.Add(time.Minute)},
		{"earlier without a touch", at.Add(time.Minute), time.Time{}, at, at.Add(time.Minute)},
		{"later without a touch", at.Add(time.Minute), time.Time{}, touched, touched},
		{"never used, zero", time.Time{}, time.Time{}, time.Time{}, time.Time{}},
		{"never used, set", time.Time{}, time.Time{}, touched, touched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := record(t, userName(t))
			rec.LastUsedAt = tt.stored
			mustCreate(t, s, rec)
			read := mustGet(t, s, rec.ID)
			if !tt.touch.IsZero() {
				if err := toucher.TouchLastUsed(ctx(t), []apikeys.Use{{ID: rec.ID, At: tt.touch}}); err != nil {
					t.Fatalf("TouchLastUsed: %v", err)
				}
			}
			up := read
			up.Name = "renamed"
			up.UpdatedAt = at.Add(time.Hour)
			up.LastUsedAt = tt.written
			up.Version = 2
			if err := s.Update(ctx(t), up); err != nil {
				t.Fatalf("Update: %v", err)
			}
			want := up
			want.LastUsedAt = tt.want
			wantEqual(t, "Get after Update", mustGet(t, s, rec.ID), want)
			wantEqual(t, "Get through the other instance after Update", mustGet(t, toucher, rec.ID), want)
		})
	}
}

// testInstancesShareData checks what the other subtests with two
// instances rely on: each sees what the other writes.
func testInstancesShareData(t *testing.T, a, b apikeys.Store) {
	user := userName(t)
	ra, rb := record(t, user), record(t, user)
	mustCreate(t, a, ra)
	mustCreate(t, b, rb)
	for _, s := range []apikeys.Store{a, b} {
		wantEqual(t, "Get", mustGet(t, s, ra.ID), ra)
		wantEqual(t, "Get", mustGet(t, s, rb.ID), rb)
		list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if want := []uuid.UUID{rb.ID, ra.ID}; !slices.Equal(ids(list), want) {
			t.Errorf("List = %v, want %v", ids(list), want)
		}
	}
	if err := b.Delete(ctx(t), user, ra.ID); err != nil {
		t.Fatalf("Delete through the other instance: %v", err)
	}
	if _, err := a.Get(ctx(t), ra.ID); !errors.Is(err, apikeys.ErrNotFound) {
		t.Errorf("Get of a key the other instance deleted = %v, want ErrNotFound", err)
	}
}

// testInstancesTouch: two instances flush last-used times of the same keys
// at once, in opposite orders, round after round, as two instances of a
// service whose clients use the same keys do. No flush may fail (a store
// that writes the uses one by one in a transaction, in the order given,
// deadlocks here), and each key ends with the latest of all the times.
func testInstancesTouch(t *testing.T, a, b apikeys.Store) {
	const (
		keys   = 100
		rounds = 20
	)
	user := userName(t)
	recs := make([]apikeys.Record, keys)
	for i := range recs {
		recs[i] = record(t, user)
		recs[i].LastUsedAt = time.Time{}
		mustCreate(t, a, recs[i])
	}
	slices.SortFunc(recs, func(x, y apikeys.Record) int { return strings.Compare(x.ID.String(), y.ID.String()) })
	// In round r, instance a writes key i at base+r s+1 µs or +2 µs, and
	// b the other one, so that each wins half the keys in every round and
	// the latest time of each key is base+(rounds-1) s+2 µs.
	base := at.Add(time.Hour)
	useAt := func(r, i, side int) time.Time {
		return base.Add(time.Duration(r)*time.Second + time.Duration(1+(i+side)%2)*time.Microsecond)
	}
	var errs errorList
	for r := range rounds {
		c := ctx(t) // per round: a slow store (miniredis under -race) fails no deadline
		var ua, ub []apikeys.Use
		for i, rec := range recs {
			ua = append(ua, apikeys.Use{ID: rec.ID, At: useAt(r, i, 0)})
		}
		for i := len(recs) - 1; i >= 0; i-- {
			ub = append(ub, apikeys.Use{ID: recs[i].ID, At: useAt(r, i, 1)})
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, side := range []struct {
			name string
			s    apikeys.Store
			uses []apikeys.Use
		}{{"a", a, ua}, {"b", b, ub}} {
			wg.Go(func() {
				<-start
				if err := side.s.TouchLastUsed(c, side.uses); err != nil {
					errs.add("round %d: TouchLastUsed of %d keys by instance %s: %w", r, len(side.uses), side.name, err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	errs.report(t)
	if t.Failed() {
		return
	}
	latest := base.Add((rounds-1)*time.Second + 2*time.Microsecond)
	wrong := 0
	for _, rec := range recs {
		want := rec
		want.LastUsedAt = latest
		for _, s := range []apikeys.Store{a, b} {
			if d := diff(mustGet(t, s, rec.ID), want); d != "" {
				if wrong++; wrong <= 5 {
					t.Errorf("key %s after concurrent flushes: %s", rec.ID, d)
				}
			}
		}
	}
	if wrong > 5 {
		t.Errorf("... and %d more", wrong-5)
	}
}
