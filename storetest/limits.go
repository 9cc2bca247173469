package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/apikeys"
)

// Tests of the counters: Spend, Refund, and Update keeping them.

// t0 is the start of a minute (and of an hour), the Unix second the
// counter tests start from.
var t0 = at.Unix() - at.Unix()%3600

func fmtRateLimit(r *apikeys.RateLimit) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%d per %ds", r.Limit, r.WindowSeconds)
}

func fmtCredits(c *apikeys.Credits) string {
	if c == nil {
		return "none"
	}
	if c.Refill == nil {
		return fmt.Sprintf("%d left, no refill", c.Remaining)
	}
	return fmt.Sprintf("%d left, refill to %d every %ds", c.Remaining, c.Refill.Amount, c.Refill.IntervalSeconds)
}

// limited returns an enabled record of a new user with the limits given
// and zero counters but for RefilledAt, which is t0.
func limited(t *testing.T, rl *apikeys.RateLimit, cr *apikeys.Credits) apikeys.Record {
	rec := record(t, userName(t))
	rec.Disabled = false
	rec.RateLimit, rec.Credits = rl, cr
	rec.Usage = apikeys.Usage{RefilledAt: t0}
	return rec
}

func spend(t *testing.T, s apikeys.Store, rec apikeys.Record, cost, now int64) (apikeys.Record, bool) {
	t.Helper()
	got, ok, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: cost, Now: now})
	if err != nil {
		t.Fatalf("Spend(cost %d at t0%+d): %v", cost, now-t0, err)
	}
	return got, ok
}

// testLimits: RateLimit and Credits are written by Create and by Update
// like every other field, whether they are set, changed, cleared or left
// out. A store that drops one makes a limited key unlimited.
func testLimits(t *testing.T, s apikeys.Store) {
	rl := &apikeys.RateLimit{Limit: 5, WindowSeconds: 1}
	rl2 := &apikeys.RateLimit{Limit: apikeys.MaxQuota, WindowSeconds: apikeys.MaxQuotaSeconds}
	once := &apikeys.Credits{Remaining: 0}
	refill := &apikeys.Credits{Remaining: apikeys.MaxQuota, Refill: &apikeys.Refill{Amount: 1, IntervalSeconds: apikeys.MaxQuotaSeconds}}
	type fields struct {
		rl *apikeys.RateLimit
		cr *apikeys.Credits
	}
	tests := []struct {
		name            string
		created, update fields
	}{
		{"none stays none", fields{}, fields{}},
		{"rate limit set by Update", fields{}, fields{rl: rl}},
		{"rate limit changed by Update", fields{rl: rl}, fields{rl: rl2}},
		{"rate limit cleared by Update", fields{rl: rl2}, fields{}},
		{"credits set by Update", fields{}, fields{cr: once}},
		{"credits changed by Update", fields{cr: once}, fields{cr: refill}},
		{"refill cleared by Update", fields{cr: refill}, fields{cr: once}},
		{"credits cleared by Update", fields{cr: refill}, fields{}},
		{"both kept by Update", fields{rl, refill}, fields{rl, refill}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := limited(t, tt.created.rl, tt.created.cr)
			mustCreate(t, s, rec)
			wantOnly(t, s, "Create", rec)

			up := rec
			up.RateLimit, up.Credits = tt.update.rl, tt.update.cr
			up.SetCredits = true
			up.UpdatedAt = at.Add(time.Hour)
			up.Version = 2
			if err := s.Update(ctx(t), up); err != nil {
				t.Fatalf("Update: %v", err)
			}
			up.SetCredits = false
			wantOnly(t, s, "Update", up)
		})
	}
}

// testSpendUnlimited: a record without limits is read, never written.
func testSpendUnlimited(t *testing.T, s apikeys.Store) {
	rec := limited(t, nil, nil)
	rec.Usage = apikeys.Usage{WindowStart: t0, WindowUsed: 3, RefilledAt: t0}
	mustCreate(t, s, rec)
	for range 3 {
		got, ok := spend(t, s, rec, 1, t0+120)
		if ok {
			t.Fatal("Spend of a record without limits spent")
		}
		wantEqual(t, "Spend", got, rec)
	}
	wantEqual(t, "Get after Spend", mustGet(t, s, rec.ID), rec)
}

func testSpendMissing(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 1, WindowSeconds: 60}, nil)
	_, _, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: t0})
	if !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("Spend(missing) = %v, want ErrNotFound", err)
	}
	mustCreate(t, s, rec)
	if err := s.Delete(ctx(t), rec.UserID, rec.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: t0})
	if !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("Spend(deleted) = %v, want ErrNotFound", err)
	}
}

// testSpendWrongDigest: only a holder of the key spends. Someone who knows
// a key's id (it is in the key, and in logs) but not its secret must not
// be able to exhaust it.
func testSpendWrongDigest(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 1, WindowSeconds: 60}, &apikeys.Credits{Remaining: 1})
	mustCreate(t, s, rec)
	wrong := rec.Digest
	wrong[31] ^= 1
	for range 3 {
		got, ok, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: rec.ID, Digest: wrong, Cost: 1, Now: t0})
		if err != nil || ok {
			t.Fatalf("Spend with another digest = %v, %v; want no spend, no error", ok, err)
		}
		wantEqual(t, "Spend with another digest", got, rec)
	}
	if _, ok := spend(t, s, rec, 1, t0); !ok {
		t.Fatal("Spend with the right digest after wrong ones: refused; the wrong ones spent")
	}
}

// testSpendRateLimit: at most Limit per window, windows aligned to the
// epoch, a later window starting over, the count never going back to an
// earlier window (an instance whose clock is behind).
func testSpendRateLimit(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 3, WindowSeconds: 60}, nil)
	mustCreate(t, s, rec)
	steps := []struct {
		cost, at int64
		ok       bool
		start    int64
		used     int64
		whatWhy  string
	}{
		{1, t0 + 10, true, t0, 1, "first in the window"},
		{2, t0 + 20, true, t0, 3, "up to the limit"},
		{1, t0 + 59, false, t0, 3, "over the limit"},
		{1, t0 + 60, true, t0 + 60, 1, "next window"},
		{1, t0 + 30, true, t0 + 60, 2, "a clock behind counts into the latest window"},
		{2, t0 + 61, false, t0 + 60, 2, "cost above what is left"},
		{4, t0 + 300, false, t0 + 60, 2, "cost above the limit, in a later window: nothing changes"},
		{1, t0 + 300, true, t0 + 300, 1, "a later window, five windows on"},
	}
	for _, st := range steps {
		got, ok := spend(t, s, rec, st.cost, st.at)
		if ok != st.ok {
			t.Fatalf("%s: Spend(cost %d at t0%+d) spent = %v, want %v", st.whatWhy, st.cost, st.at-t0, ok, st.ok)
		}
		want := apikeys.Usage{WindowStart: st.start, WindowUsed: st.used, RefilledAt: t0}
		if got.Usage != want {
			t.Fatalf("%s: Spend returned usage %+v, want %+v", st.whatWhy, got.Usage, want)
		}
		if stored := mustGet(t, s, rec.ID); stored.Usage != want || stored.Version != 1 {
			t.Fatalf("%s: stored usage %+v, version %d; want %+v, version 1", st.whatWhy, stored.Usage, stored.Version, want)
		}
	}
}

// testSpendCredits: credits spent down to zero, refilled to Amount (not by
// it) in whole intervals, never without a refill.
func testSpendCredits(t *testing.T, s apikeys.Store) {
	rec := limited(t, nil, &apikeys.Credits{Remaining: 5, Refill: &apikeys.Refill{Amount: 10, IntervalSeconds: 100}})
	mustCreate(t, s, rec)
	steps := []struct {
		cost, at  int64
		ok        bool
		remaining int64
		refilled  int64
		why       string
	}{
		{3, t0 + 1, true, 2, t0, "spend"},
		{3, t0 + 2, false, 2, t0, "more than remains"},
		{2, t0 + 99, true, 0, t0, "down to zero"},
		{1, t0 + 99, false, 0, t0, "at zero"},
		{1, t0 + 100, true, 9, t0 + 100, "refilled after one interval"},
		{4, t0 + 350, true, 6, t0 + 300, "refilled to the amount, in whole intervals"},
		{11, t0 + 500, false, 6, t0 + 300, "above the amount: refused, nothing written"},
	}
	for _, st := range steps {
		got, ok := spend(t, s, rec, st.cost, st.at)
		if ok != st.ok {
			t.Fatalf("%s: Spend(cost %d at t0%+d) spent = %v, want %v", st.why, st.cost, st.at-t0, ok, st.ok)
		}
		if got.Credits == nil || got.Credits.Remaining != st.remaining || got.Usage.RefilledAt != st.refilled {
			t.Fatalf("%s: Spend returned %s refilled at t0%+d, want %d left, refilled at t0%+d", st.why, fmtCredits(got.Credits), got.Usage.RefilledAt-t0, st.remaining, st.refilled-t0)
		}
	}

	once := limited(t, nil, &apikeys.Credits{Remaining: 1})
	mustCreate(t, s, once)
	if _, ok := spend(t, s, once, 1, t0); !ok {
		t.Fatal("credits without refill: the first spend was refused")
	}
	if got, ok := spend(t, s, once, 1, t0+10*apikeys.MaxQuotaSeconds); ok || remaining(got) != 0 {
		t.Fatalf("credits without refill: spent again much later (spent %v, %s)", ok, fmtCredits(got.Credits))
	}
}

// testSpendRefused: a charge one limit refuses spends nothing from the
// other: the window is not charged when the credits refuse.
func testSpendRefused(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}, &apikeys.Credits{Remaining: 2})
	mustCreate(t, s, rec)
	spend(t, s, rec, 2, t0)
	before := mustGet(t, s, rec.ID)
	if _, ok := spend(t, s, rec, 1, t0+1); ok {
		t.Fatal("spent with no credits left")
	}
	wantEqual(t, "Get after a refused Spend", mustGet(t, s, rec.ID), before)
}

// testSpendMatchesCharge drives a store and Key.Charge with the same
// random spends, refunds and clock, and wants the same outcome and
// counters every time: Charge is the rule every store applies.
func testSpendMatchesCharge(t *testing.T, s apikeys.Store) {
	rng := rand.New(rand.NewPCG(13, 1))
	configs := []apikeys.Record{
		limited(t, &apikeys.RateLimit{Limit: 5, WindowSeconds: 7}, nil),
		limited(t, nil, &apikeys.Credits{Remaining: 9, Refill: &apikeys.Refill{Amount: 6, IntervalSeconds: 11}}),
		limited(t, &apikeys.RateLimit{Limit: 4, WindowSeconds: 5}, &apikeys.Credits{Remaining: 12, Refill: &apikeys.Refill{Amount: 8, IntervalSeconds: 13}}),
		limited(t, &apikeys.RateLimit{Limit: 3, WindowSeconds: 3}, &apikeys.Credits{Remaining: 20}),
	}
	for _, rec := range configs {
		mustCreate(t, s, rec)
		model := mustGet(t, s, rec.ID)
		now := t0
		for i := range 60 {
			now += rng.Int64N(6) - 1 // now and then a clock that is behind
			cost := 1 + rng.Int64N(3)
			want := model
			want.Credits = cloneCredits(model.Credits)
			wantOK := want.Charge(cost, now) == nil
			got, ok := spend(t, s, rec, cost, now)
			if ok != wantOK {
				t.Fatalf("%s, %s, step %d: Spend(cost %d at t0%+d) spent = %v, Charge says %v", fmtRateLimit(rec.RateLimit), fmtCredits(rec.Credits), i, cost, now-t0, ok, wantOK)
			}
			if ok {
				model = want
			}
			if d := diff(got, model); d != "" {
				t.Fatalf("%s, %s, step %d: Spend(cost %d at t0%+d): %s", fmtRateLimit(rec.RateLimit), fmtCredits(rec.Credits), i, cost, now-t0, d)
			}
			if ok && rng.IntN(4) == 0 {
				r := apikeys.RefundRequest{ID: rec.ID, Cost: cost, Version: got.Version, WindowStart: got.Usage.WindowStart, RefilledAt: got.Usage.RefilledAt}
				if err := s.Refund(ctx(t), r); err != nil {
					t.Fatalf("Refund: %v", err)
				}
				model.Refund(r.Cost, r.WindowStart, r.RefilledAt)
				wantEqual(t, "Get after Refund", mustGet(t, s, rec.ID), model)
			}
		}
	}
}

func cloneCredits(c *apikeys.Credits) *apikeys.Credits {
	if c == nil {
		return nil
	}
	cp := *c
	if c.Refill != nil {
		r := *c.Refill
		cp.Refill = &r
	}
	return &cp
}

// testRefund: a refund gives back into the window and interval it was
// spent in, and only those; a missing record is no error.
func testRefund(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}, &apikeys.Credits{Remaining: 10, Refill: &apikeys.Refill{Amount: 10, IntervalSeconds: 3600}})
	mustCreate(t, s, rec)
	got, _ := spend(t, s, rec, 3, t0+5)
	refund := func(cost, window, refilled int64) {
		t.Helper()
		err := s.Refund(ctx(t), apikeys.RefundRequest{ID: rec.ID, Cost: cost, Version: 1, WindowStart: window, RefilledAt: refilled})
		if err != nil {
			t.Fatalf("Refund: %v", err)
		}
	}
	refund(3, got.Usage.WindowStart, got.Usage.RefilledAt)
	after := mustGet(t, s, rec.ID)
	if after.Usage.WindowUsed != 0 || remaining(after) != 10 || after.Version != 1 {
		t.Fatalf("after Refund: %d used, %s, version %d; want 0 used, 10 left, version 1", after.Usage.WindowUsed, fmtCredits(after.Credits), after.Version)
	}

	spend(t, s, rec, 4, t0+5)
	refund(4, t0-60, t0-3600) // a window and an interval that are over
	after = mustGet(t, s, rec.ID)
	if after.Usage.WindowUsed != 4 || remaining(after) != 6 {
		t.Fatalf("after a Refund into past counters: %d used, %s; want 4 used, 6 left", after.Usage.WindowUsed, fmtCredits(after.Credits))
	}

	// An Update in between (which may have set the counters) voids it.
	got, _ = spend(t, s, rec, 2, t0+5)
	up := after
	up.Name, up.Version = "renamed", 2
	if err := s.Update(ctx(t), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	refund(2, got.Usage.WindowStart, got.Usage.RefilledAt)
	after = mustGet(t, s, rec.ID)
	if after.Usage.WindowUsed != 6 || remaining(after) != 4 {
		t.Fatalf("after a Refund of version 1 into version 2: %d used, %s; want 6 used, 4 left", after.Usage.WindowUsed, fmtCredits(after.Credits))
	}

	missing := limited(t, nil, nil)
	if err := s.Refund(ctx(t), apikeys.RefundRequest{ID: missing.ID, Cost: 1, Version: 1}); err != nil {
		t.Fatalf("Refund(missing) = %v, want nil", err)
	}
}

// testUpdateKeepsCounters: an Update writes a record read before spends of
// this or another instance; it must not undo them. With SetCredits it sets
// the credits, and still keeps the window.
func testUpdateKeepsCounters(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}, &apikeys.Credits{Remaining: 10, Refill: &apikeys.Refill{Amount: 10, IntervalSeconds: 3600}})
	mustCreate(t, s, rec)
	spent, _ := spend(t, s, rec, 4, t0+5)

	up := rec // read before the spend
	up.Name = "renamed"
	up.Credits = &apikeys.Credits{Remaining: 10, Refill: &apikeys.Refill{Amount: 20, IntervalSeconds: 60}}
	up.Version = 2
	if err := s.Update(ctx(t), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := up
	want.Credits = &apikeys.Credits{Remaining: 6, Refill: up.Credits.Refill}
	want.Usage = spent.Usage
	wantOnly(t, s, "Update of a stale read", want)

	set := want
	set.Credits = &apikeys.Credits{Remaining: 50, Refill: up.Credits.Refill}
	set.Usage = apikeys.Usage{WindowStart: t0 - 600, WindowUsed: 0, RefilledAt: t0 + 30}
	set.SetCredits = true
	set.Version = 3
	if err := s.Update(ctx(t), set); err != nil {
		t.Fatalf("Update with SetCredits: %v", err)
	}
	want = set
	want.SetCredits = false
	want.Usage = apikeys.Usage{WindowStart: spent.Usage.WindowStart, WindowUsed: spent.Usage.WindowUsed, RefilledAt: t0 + 30}
	wantOnly(t, s, "Update with SetCredits", want)
}

// testConcurrentSpends: many spends of one key at once spend exactly what
// the limits allow.
func testConcurrentSpends(t *testing.T, s apikeys.Store) {
	concurrentSpends(t, []apikeys.Store{s})
}

// testInstancesSpend: spends through two instances at once are exact too.
func testInstancesSpend(t *testing.T, a, b apikeys.Store) {
	concurrentSpends(t, []apikeys.Store{a, b})
}

func concurrentSpends(t *testing.T, stores []apikeys.Store) {
	const workers, each, limit, credits = 8, 12, 40, 30
	for _, tt := range []struct {
		name string
		rec  apikeys.Record
		want int64
	}{
		{"rate limit", limited(t, &apikeys.RateLimit{Limit: limit, WindowSeconds: 3600}, nil), limit},
		{"credits", limited(t, nil, &apikeys.Credits{Remaining: credits}), credits},
		{"both", limited(t, &apikeys.RateLimit{Limit: limit, WindowSeconds: 3600}, &apikeys.Credits{Remaining: credits}), credits},
	} {
		mustCreate(t, stores[0], tt.rec)
		var spent atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*len(stores))
		for i := range workers * len(stores) {
			s := stores[i%len(stores)]
			wg.Go(func() {
				for range each {
					_, ok, err := s.Spend(ctx(t), apikeys.SpendRequest{ID: tt.rec.ID, Digest: tt.rec.Digest, Cost: 1, Now: t0 + 1})
					if err != nil {
						errs <- err
						return
					}
					if ok {
						spent.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: concurrent Spend: %v", tt.name, err)
		}
		if got := spent.Load(); got != tt.want {
			t.Errorf("%s: %d workers spent %d, want exactly %d", tt.name, workers*len(stores), got, tt.want)
		}
		stored := mustGet(t, stores[0], tt.rec.ID)
		if tt.rec.RateLimit != nil && stored.Usage.WindowUsed != tt.want {
			t.Errorf("%s: stored window used %d, want %d", tt.name, stored.Usage.WindowUsed, tt.want)
		}
		if tt.rec.Credits != nil && remaining(stored) != credits-tt.want {
			t.Errorf("%s: stored credits %s, want %d left", tt.name, fmtCredits(stored.Credits), credits-tt.want)
		}
	}
}

// testManagersExact: four Managers on one store (two per instance, with
// and without the cache), eight goroutines each, authorize one key with a
// limit of 100 in a long window, and again one with 100 credits: exactly
// 100 requests pass each time, and the rest are refused by the limit.
func testManagersExact(t *testing.T, a, b apikeys.Store) {
	const managers, workers, each, limit = 4, 8, 5, 100
	clock := func() time.Time { return time.Unix(t0+1, 0) }
	var ms []*apikeys.Manager
	for i := range managers {
		cfg := &apikeys.Config{Now: clock, LastUsedInterval: -1}
		if i%2 == 1 {
			cfg.Cache = &apikeys.CacheConfig{}
		}
		m, err := apikeys.New([]apikeys.Store{a, b}[i/2], cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		ms = append(ms, m)
	}
	for _, tt := range []struct {
		name string
		p    apikeys.CreateParams
		want error
	}{
		{"rate limit", apikeys.CreateParams{RateLimit: &apikeys.RateLimit{Limit: limit, WindowSeconds: 3600}}, apikeys.ErrRateLimited},
		{"credits", apikeys.CreateParams{Credits: &apikeys.Credits{Remaining: limit}}, apikeys.ErrCreditsExhausted},
	} {
		p := tt.p
		p.Type, p.Name, p.UserID = apikeys.Public, "exact", userName(t)
		nk, err := ms[0].Create(ctx(t), p)
		if err != nil {
			t.Fatal(err)
		}
		var ok atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, managers*workers)
		for i := range managers * workers {
			m := ms[i%managers]
			wg.Go(func() {
				for range each {
					_, err := m.Authorize(ctx(t), nk.Value, apikeys.Request{})
					switch {
					case err == nil:
						ok.Add(1)
					case !errors.Is(err, tt.want):
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: Authorize: %v, want nil or %v", tt.name, err, tt.want)
		}
		if got := ok.Load(); got != limit {
			t.Errorf("%s: %d Managers × %d goroutines authorized %d of %d requests, want exactly %d", tt.name, managers, workers, got, managers*workers*each, limit)
		}
	}
}

// testWindowChange: an Update that changes a rate limit's window keeps
// the count until the window has lasted the new length: a longer window
// must not start afresh at its first aligned start.
func testWindowChange(t *testing.T, s apikeys.Store) {
	rec := limited(t, &apikeys.RateLimit{Limit: 2, WindowSeconds: 60}, nil)
	mustCreate(t, s, rec)
	spend(t, s, rec, 2, t0+70) // the window [t0+60, t0+120)
	up := rec
	up.RateLimit = &apikeys.RateLimit{Limit: 2, WindowSeconds: 90}
	up.Version = 2
	if err := s.Update(ctx(t), up); err != nil {
		t.Fatalf("Update: %v", err)
	}
	// t0 is a multiple of 90: t0+90 starts an aligned 90-second window,
	// only 30 seconds after the counted one started. The count lasts
	// until t0+60+90; the next aligned window starts at t0+180.
	for _, now := range []int64{t0 + 95, t0 + 179} {
		if _, ok := spend(t, s, rec, 1, now); ok {
			t.Fatalf("spent at t0%+d after the window grew from 60 to 90 seconds: the count was reset", now-t0)
		}
	}
	if got, ok := spend(t, s, rec, 1, t0+180); !ok || got.Usage.WindowStart != t0+180 || got.Usage.WindowUsed != 1 {
		t.Fatalf("at t0+180: spent %v, usage %+v; want a new window at t0+180", ok, got.Usage)
	}
}

// remaining is rec's remaining credits, -1 without credits (a store that
// dropped them fails the comparison instead of panicking).
func remaining(rec apikeys.Record) int64 {
	if rec.Credits == nil {
		return -1
	}
	return rec.Credits.Remaining
}
