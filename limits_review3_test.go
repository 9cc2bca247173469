package apikeys_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// spendHookStore runs a hook once, armed by the test: after a Spend (between
// Authorize's spend and its refund) or before a Create (between Rotate's
// read of the old key and its retirement).
type spendHookStore struct {
	*memstore.Store
	afterSpend   atomic.Pointer[func()]
	beforeCreate atomic.Pointer[func()]
}

func (s *spendHookStore) Spend(ctx context.Context, r apikeys.SpendRequest) (apikeys.Record, bool, error) {
	rec, ok, err := s.Store.Spend(ctx, r)
	if f := s.afterSpend.Swap(nil); f != nil {
		(*f)()
	}
	return rec, ok, err
}

func (s *spendHookStore) Create(ctx context.Context, rec apikeys.Record) error {
	if f := s.beforeCreate.Swap(nil); f != nil {
		(*f)()
	}
	return s.Store.Create(ctx, rec)
}

func spendHookEnv(t *testing.T) (*spendHookStore, *apikeys.Manager, *clock) {
	t.Helper()
	s := &spendHookStore{Store: memstore.New()}
	c := newClock()
	// As a remote store, whose known limited keys are read with Spend
	// before the rules (a Local store is always read with Get first).
	m, err := apikeys.New(struct{ apikeys.Store }{s}, &apikeys.Config{Now: c.now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return s, m, c
}

// TestReview3RefundAfterSetCreditsMintsCredit: a refused request (wrong
// origin) is spent with the read and refunded; when an Update sets the
// credits in between, in the same second as the key's last refill or
// creation, Usage.RefilledAt is unchanged, so the refund lands in the new
// credits, which the operator set to an exact number.
func TestReview3RefundAfterSetCreditsMintsCredit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  int64
	}{
		{"cut off", 0},
		{"set to 10", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, m, _ := spendHookEnv(t)
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "w", UserID: "alice",
				AllowedOrigins: []string{"https://app.example"}, Credits: credits(5)})
			require.NoError(t, err)
			// One authorized request, so that the Manager knows the key
			// is limited and reads it with Spend from now on.
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://app.example"})
			require.NoError(t, err)
			hook := func() {
				_, err := m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{Credits: credits(tt.set)})
				require.NoError(t, err)
			}
			s.afterSpend.Store(&hook)
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Origin: "https://evil.example"})
			require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
			rec, err := s.Get(t.Context(), nk.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.set, rec.Credits.Remaining,
				"the refund of a cost spent from the replaced credits must not be added to the credits the Update set")
		})
	}
}

// firstSecond returns the first Unix second at or after from at which the
// window of length to starts later than the window of length from: a
// change of window length at that second moves the aligned start forward.
func firstSecond(t *testing.T, base time.Time, from, to int64) time.Time {
	t.Helper()
	for d := int64(0); d < from*to; d++ {
		s := base.Unix() + d
		if s-s%to > s-s%from {
			return time.Unix(s, 0).UTC()
		}
	}
	t.Fatalf("no second where a %ds window starts after a %ds one", to, from)
	return time.Time{}
}

// TestReview3WindowChangeResetsCount: UpdateParams.RateLimit says "the
// current window's count is kept either way", but a change of window
// length whose aligned window starts after the stored WindowStart makes
// the next Charge roll over to 0 used. The key then spends the limit again
// at once, so the new window (which began before the spends already
// counted) holds twice its limit. A key with api_keys:write may do it to
// itself: a longer window is a "narrowing".
func TestReview3WindowChangeResetsCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to int64
		self     bool
	}{
		{"owner: 10/60s to 10/90s", 60, 90, false},
		{"owner: 10/60s to 10/61s", 60, 61, false},
		{"the key itself: 10/60s to 10/90s", 60, 90, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, nk := limitedEnv(t, nil, apikeys.CreateParams{Type: apikeys.Private, RateLimit: rate(10, tt.from)})
			e.clock.set(firstSecond(t, e.clock.now(), tt.from, tt.to))
			var k apikeys.Key
			for i := range 10 {
				var err error
				k, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
				require.NoError(t, err, "request %d", i+1)
			}
			_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
			require.ErrorIs(t, err, apikeys.ErrRateLimited)

			ctx := e.ctx
			if tt.self {
				ctx = apikeys.NewContext(ctx, k)
			}
			_, err = e.m.Update(ctx, "alice", nk.ID, apikeys.UpdateParams{RateLimit: rate(10, tt.to)})
			require.NoError(t, err)
			_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
			assert.ErrorIs(t, err, apikeys.ErrRateLimited,
				"the 10 spent this second lie in the new %ds window too: an 11th must be refused", tt.to)
		})
	}
}

// TestReview3RetryAfterHolds: whenever a LimitError says RetryAfter > 0,
// the same request is still refused one second before it and allowed at
// it. It fails when the rate limit is reported while credits (never
// refilled, or refilled later than the window ends) would refuse too, and
// after a window was lengthened (RateLimitLeft counts the window from the
// stored, unaligned WindowStart, while Charge rolls at the aligned one).
func TestReview3RetryAfterHolds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		p      apikeys.CreateParams
		spend  int
		update *apikeys.UpdateParams
		at     time.Duration // from the clock's start, before spending
	}{
		{"rate limit and credits never refilled", apikeys.CreateParams{RateLimit: rate(1, 60), Credits: credits(1)}, 1, nil, 0},
		{"rate limit and credits refilled after the window", apikeys.CreateParams{RateLimit: rate(1, 60), Credits: credits(1, 1, 3600)}, 1, nil, 0},
		{"window lengthened mid-hour", apikeys.CreateParams{RateLimit: rate(2, 60)}, 2, &apikeys.UpdateParams{RateLimit: rate(2, 3600)}, 30*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, nk := limitedEnv(t, nil, tt.p)
			e.clock.advance(tt.at)
			for range tt.spend {
				_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
				require.NoError(t, err)
			}
			if tt.update != nil {
				_, err := e.m.Update(e.ctx, "alice", nk.ID, *tt.update)
				require.NoError(t, err)
			}
			_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
			var le *apikeys.LimitError
			require.ErrorAs(t, err, &le)
			if le.RetryAfter == 0 {
				return // "waiting cannot help": nothing to check
			}
			start := e.clock.now()
			e.clock.set(start.Add(le.RetryAfter - time.Second))
			_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
			assert.Error(t, err, "allowed before RetryAfter %v: Retry-After overstated", le.RetryAfter)
			e.clock.set(start.Add(le.RetryAfter))
			_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
			assert.NoError(t, err, "still refused at RetryAfter %v: Retry-After understated (or should be 0)", le.RetryAfter)
		})
	}
}
