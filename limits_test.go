package apikeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

func rate(limit, window int64) *apikeys.RateLimit {
	return &apikeys.RateLimit{Limit: limit, WindowSeconds: window}
}

func credits(remaining int64, refill ...int64) *apikeys.Credits {
	c := &apikeys.Credits{Remaining: remaining}
	if len(refill) == 2 {
		c.Refill = &apikeys.Refill{Amount: refill[0], IntervalSeconds: refill[1]}
	}
	return c
}

func TestCharge(t *testing.T) {
	t.Parallel()
	const now = 1_000_040 // 20 s into a minute
	tests := []struct {
		name     string
		key      apikeys.Key
		cost     int64
		want     error
		wantUsed int64
		wantLeft int64
	}{
		{"no limits", apikeys.Key{}, 5, nil, 0, 0},
		{"under the rate limit", apikeys.Key{RateLimit: rate(3, 60), Usage: apikeys.Usage{WindowStart: now - 20, WindowUsed: 2}}, 1, nil, 3, 0},
		{"over the rate limit", apikeys.Key{RateLimit: rate(3, 60), Usage: apikeys.Usage{WindowStart: now - 20, WindowUsed: 3}}, 1, apikeys.ErrRateLimited, 3, 0},
		{"an old window is over", apikeys.Key{RateLimit: rate(3, 60), Usage: apikeys.Usage{WindowStart: now - 80, WindowUsed: 3}}, 3, nil, 3, 0},
		{"a future window is not moved back", apikeys.Key{RateLimit: rate(3, 60), Usage: apikeys.Usage{WindowStart: now + 40, WindowUsed: 3}}, 1, apikeys.ErrRateLimited, 3, 0},
		{"credits spent", apikeys.Key{Credits: credits(5)}, 5, nil, 0, 0},
		{"credits short", apikeys.Key{Credits: credits(4)}, 5, apikeys.ErrCreditsExhausted, 0, 4},
		{"refilled to the amount", apikeys.Key{Credits: credits(0, 10, 20), Usage: apikeys.Usage{RefilledAt: now - 20}}, 4, nil, 0, 6},
		{"not yet refilled", apikeys.Key{Credits: credits(0, 10, 20), Usage: apikeys.Usage{RefilledAt: now - 19}}, 1, apikeys.ErrCreditsExhausted, 0, 0},
		{"rate limit first, nothing spent", apikeys.Key{RateLimit: rate(1, 60), Credits: credits(0), Usage: apikeys.Usage{WindowStart: now - 20}}, 1, apikeys.ErrCreditsExhausted, 0, 0},
		{"credits refuse, the window is not charged", apikeys.Key{RateLimit: rate(5, 60), Credits: credits(1), Usage: apikeys.Usage{WindowStart: now - 20, WindowUsed: 1}}, 2, apikeys.ErrCreditsExhausted, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := tt.key
			err := k.Charge(tt.cost, now)
			assert.ErrorIs(t, err, tt.want)
			if tt.want == nil {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.wantUsed, k.Usage.WindowUsed, "window used")
			if k.Credits != nil {
				assert.Equal(t, tt.wantLeft, k.Credits.Remaining, "credits left")
			}
		})
	}
}

// limitedEnv is an env whose key has the given limits.
func limitedEnv(t *testing.T, cfg *apikeys.Config, p apikeys.CreateParams) (*env, apikeys.NewKey) {
	t.Helper()
	e := &env{store: memstore.New(), clock: newClock(), ctx: t.Context()}
	var c apikeys.Config
	if cfg != nil {
		c = *cfg
	}
	c.Now = e.clock.now
	m, err := apikeys.New(e.store, &c)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	e.m = m
	return e, e.create(t, p)
}

func TestAuthorizeRateLimit(t *testing.T) {
	t.Parallel()
	e, nk := limitedEnv(t, nil, apikeys.CreateParams{RateLimit: rate(3, 60)})
	e.clock.advance(15 * time.Second)
	for i := range 3 {
		k, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err, "request %d", i+1)
		left, reset := k.RateLimitLeft(e.clock.now())
		assert.Equal(t, int64(2-i), left)
		assert.Equal(t, 45*time.Second, reset)
	}
	k, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrRateLimited)
	var le *apikeys.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 45*time.Second, le.RetryAfter)
	assert.Equal(t, nk.ID, k.ID, "the refused key comes back for headers and CORS")
	left, _ := k.RateLimitLeft(e.clock.now())
	assert.Zero(t, left)

	e.clock.advance(45 * time.Second)
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err, "the next window")
}

func TestAuthorizeCredits(t *testing.T) {
	t.Parallel()
	e, nk := limitedEnv(t, nil, apikeys.CreateParams{Credits: credits(5, 10, 3600)})
	k, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: 4})
	require.NoError(t, err)
	assert.Equal(t, int64(1), k.Credits.Remaining)
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: 2})
	require.ErrorIs(t, err, apikeys.ErrCreditsExhausted)
	var le *apikeys.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, time.Hour, le.RetryAfter)
	assert.Contains(t, err.Error(), "retry after 3600s")

	e.clock.advance(time.Hour)
	k, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: 2})
	require.NoError(t, err, "refilled")
	assert.Equal(t, int64(8), k.Credits.Remaining)

	got, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(8), got.Credits.Remaining)
	e.clock.advance(time.Hour)
	got, err = e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(10), got.Credits.Remaining, "a due refill shows as done")
}

// TestAuthorizeLimitRetryAfter: waiting cannot help credits that are never
// refilled, nor a cost above the limit or the refill: RetryAfter is 0.
func TestAuthorizeLimitRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    apikeys.CreateParams
		cost int64
		want error
	}{
		{"credits never refilled", apikeys.CreateParams{Credits: credits(1)}, 2, apikeys.ErrCreditsExhausted},
		{"cost above the refill", apikeys.CreateParams{Credits: credits(1, 5, 60)}, 6, apikeys.ErrCreditsExhausted},
		{"cost above the limit", apikeys.CreateParams{RateLimit: rate(5, 60)}, 6, apikeys.ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, nk := limitedEnv(t, nil, tt.p)
			_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: tt.cost})
			var le *apikeys.LimitError
			require.ErrorAs(t, err, &le)
			assert.ErrorIs(t, err, tt.want)
			assert.Zero(t, le.RetryAfter)
		})
	}
}

func TestAuthorizeCostOutOfRange(t *testing.T) {
	t.Parallel()
	e, nk := limitedEnv(t, nil, apikeys.CreateParams{RateLimit: rate(5, 60)})
	for _, cost := range []int64{-1, apikeys.MaxQuota + 1} {
		_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: cost})
		assert.ErrorIs(t, err, apikeys.ErrValidation, "cost %d", cost)
	}
	for range 5 {
		_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err, "a bad cost spent nothing")
	}
}

// spendCounter counts Gets, Spends and Refunds.
type spendCounter struct {
	*memstore.Store
	spends, refunds, gets atomic.Int64
}

func (s *spendCounter) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

func (s *spendCounter) Spend(ctx context.Context, r apikeys.SpendRequest) (apikeys.Record, bool, error) {
	s.spends.Add(1)
	return s.Store.Spend(ctx, r)
}

func (s *spendCounter) Refund(ctx context.Context, r apikeys.RefundRequest) error {
	s.refunds.Add(1)
	return s.Store.Refund(ctx, r)
}

// TestRefusedRequestsSpendNothing: a request refused by any other rule
// spends nothing, with the cache (checked before spending) and without
// (spent with the read, then refunded).
func TestRefusedRequestsSpendNothing(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "uncached", true: "cached"}[cached], func(t *testing.T) {
			t.Parallel()
			s := &spendCounter{Store: memstore.New()}
			c := newClock()
			cfg := &apikeys.Config{Now: c.now}
			if cached {
				cfg.Cache = &apikeys.CacheConfig{}
			}
			// As a remote store, whose known limited keys are read with
			// Spend (a Local store is always read with Get first).
			m, err := apikeys.New(struct{ apikeys.Store }{s}, cfg)
			require.NoError(t, err)
			nk, err := m.Create(t.Context(), apikeys.CreateParams{
				Type: apikeys.Public, Name: "k", UserID: "alice",
				AllowedOrigins: []string{"https://app.example"}, Scopes: []string{"calls:write"},
				RateLimit: rate(2, 60), Credits: credits(2),
			})
			require.NoError(t, err)
			ok := apikeys.Request{Origin: "https://app.example", Scopes: []string{"calls:write"}}
			// One authorized request first: from then on an uncached
			// Manager knows the key is limited, and reads and spends in
			// one call, before the rules can refuse.
			_, err = m.Authorize(t.Context(), nk.Value, ok)
			require.NoError(t, err)
			spendsBefore := s.spends.Load()
			refused := []apikeys.Request{
				{Origin: "https://evil.example", Scopes: []string{"calls:write"}},
				{Origin: "https://app.example"},
				{Origin: "https://app.example", Scopes: []string{"calls:read"}},
			}
			for _, req := range refused {
				for range 3 {
					_, err := m.Authorize(t.Context(), nk.Value, req)
					require.Error(t, err)
					require.NotErrorIs(t, err, apikeys.ErrRateLimited)
				}
			}
			if cached {
				assert.Zero(t, s.spends.Load()-spendsBefore+s.refunds.Load(), "refused on the cached record, before spending")
			} else {
				assert.Equal(t, int64(9), s.spends.Load()-spendsBefore, "read with Spend")
				assert.Equal(t, int64(9), s.refunds.Load(), "every refused spend refunded")
			}
			_, err = m.Authorize(t.Context(), nk.Value, ok)
			require.NoError(t, err, "the second allowed request")
			_, err = m.Authorize(t.Context(), nk.Value, ok)
			require.ErrorIs(t, err, apikeys.ErrRateLimited)

			// Disabled and expired keys refuse too, and give back.
			_, err = m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{Credits: credits(10), RateLimit: rate(10, 60), Disabled: new(true)})
			require.NoError(t, err)
			_, err = m.Authorize(t.Context(), nk.Value, ok)
			require.ErrorIs(t, err, apikeys.ErrKeyDisabled)
			rec, err := s.Get(t.Context(), nk.ID)
			require.NoError(t, err)
			assert.Equal(t, int64(10), rec.Credits.Remaining, "a disabled key spends nothing")
		})
	}
}

// TestLimitedKeyGoesToTheStore: with the cache, a key without limits costs
// no store call, and a limited key's every request spends in the store,
// in one call.
func TestLimitedKeyGoesToTheStore(t *testing.T) {
	t.Parallel()
	s := &spendCounter{Store: memstore.New()}
	m, err := apikeys.New(s, &apikeys.Config{Cache: &apikeys.CacheConfig{}})
	require.NoError(t, err)
	free, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "free", UserID: "alice"})
	require.NoError(t, err)
	limited, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "limited", UserID: "alice", RateLimit: rate(100, 60)})
	require.NoError(t, err)
	for range 5 {
		_, err := m.Authorize(t.Context(), free.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	assert.Zero(t, s.spends.Load())
	for range 5 {
		_, err := m.Authorize(t.Context(), limited.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	assert.Equal(t, int64(5), s.spends.Load())
	rec, err := s.Get(t.Context(), limited.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(5), rec.Usage.WindowUsed)
}

func TestLimitsValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name   string
		rl     *apikeys.RateLimit
		cr     *apikeys.Credits
		fields []string
	}{
		{"zero limit", rate(0, 60), nil, []string{"rate_limit.limit"}},
		{"zero window", rate(1, 0), nil, []string{"rate_limit.window_seconds"}},
		{"huge", rate(apikeys.MaxQuota+1, apikeys.MaxQuotaSeconds+1), nil, []string{"rate_limit.limit", "rate_limit.window_seconds"}},
		{"negative credits", nil, credits(-1), []string{"credits.remaining"}},
		{"bad refill", nil, credits(1, 0, 0), []string{"credits.refill.amount", "credits.refill.interval_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.m.Create(e.ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "bob", RateLimit: tt.rl, Credits: tt.cr})
			assert.ErrorIs(t, err, apikeys.ErrValidation)
			assert.Equal(t, tt.fields, fields(err))
			err = e.m.ValidateUpdate(apikeys.UpdateParams{RateLimit: tt.rl, Credits: tt.cr})
			assert.Equal(t, tt.fields, fields(err))
		})
	}
	err := e.m.ValidateUpdate(apikeys.UpdateParams{RateLimit: rate(1, 1), RemoveRateLimit: true, Credits: credits(1), RemoveCredits: true})
	assert.Equal(t, []string{"rate_limit", "credits"}, fields(err))
	page, err := e.m.List(e.ctx, "bob", apikeys.ListParams{})
	require.NoError(t, err)
	assert.Empty(t, page.Keys, "nothing stored")
}

func TestUpdateLimits(t *testing.T) {
	t.Parallel()
	e, nk := limitedEnv(t, nil, apikeys.CreateParams{RateLimit: rate(5, 60), Credits: credits(5, 5, 3600)})
	for range 3 {
		_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	k, err := e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Name: new("renamed"), RateLimit: rate(4, 60)})
	require.NoError(t, err)
	assert.Equal(t, int64(2), k.Credits.Remaining, "a change that does not set credits keeps what was spent")
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrRateLimited, "the window's count survives a change of limit")

	k, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Credits: credits(100), RemoveRateLimit: true})
	require.NoError(t, err)
	assert.Nil(t, k.RateLimit)
	assert.Equal(t, credits(100), k.Credits)
	for range 10 {
		_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	k, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{RemoveCredits: true})
	require.NoError(t, err)
	assert.False(t, k.Limited())
}

func TestRotateCarriesCounters(t *testing.T) {
	t.Parallel()
	e, nk := limitedEnv(t, nil, apikeys.CreateParams{RateLimit: rate(3, 3600), Credits: credits(10)})
	for range 2 {
		_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Cost: 1})
		require.NoError(t, err)
	}
	next, err := e.m.Rotate(e.ctx, "alice", nk.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(8), next.Credits.Remaining)
	_, err = e.m.Authorize(e.ctx, next.Value, apikeys.Request{})
	require.NoError(t, err)
	_, err = e.m.Authorize(e.ctx, next.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrRateLimited, "rotating does not reset the window")
}

func TestNarrowLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	actor := e.create(t, apikeys.CreateParams{Type: apikeys.Private, RateLimit: rate(10, 60), Credits: credits(50, 50, 3600)})
	k, err := e.m.Authorize(e.ctx, actor.Value, apikeys.Request{Cost: 7})
	require.NoError(t, err)
	ctx := apikeys.NewContext(e.ctx, k)
	tests := []struct {
		name   string
		rl     *apikeys.RateLimit
		cr     *apikeys.Credits
		denied []string
	}{
		{"same", rate(10, 60), credits(43, 50, 3600), nil},
		{"stricter", rate(5, 120), credits(1, 10, 7200), nil},
		{"unlimited", nil, nil, []string{"rate_limit", "credits.remaining"}},
		{"higher limit", rate(11, 60), credits(1), []string{"rate_limit"}},
		{"shorter window", rate(10, 59), credits(1), []string{"rate_limit"}},
		{"more credits than are left", rate(10, 60), credits(44), []string{"credits.remaining"}},
		{"bigger refill", rate(10, 60), credits(1, 51, 3600), []string{"credits.refill"}},
		{"faster refill", rate(10, 60), credits(1, 50, 3599), []string{"credits.refill"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "child", UserID: "alice", RateLimit: tt.rl, Credits: tt.cr})
			if tt.denied == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apikeys.ErrNotPermitted)
			var got []string
			for _, pe := range apikeys.PermissionErrors(err) {
				got = append(got, pe.Field)
			}
			assert.Equal(t, tt.denied, got)
		})
	}
}

func TestLimitsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		p    apikeys.CreateParams
		want string
	}{
		{apikeys.CreateParams{}, `"rate_limit":null,"credits":null`},
		{apikeys.CreateParams{RateLimit: rate(100, 60), Credits: credits(1000, 1000, 86400)},
			`"rate_limit":{"limit":100,"window_seconds":60},"credits":{"remaining":1000,"refill":{"amount":1000,"interval_seconds":86400}}`},
		{apikeys.CreateParams{Credits: credits(7)}, `"credits":{"remaining":7,"refill":null}`},
	} {
		nk := e.create(t, tt.p)
		b, err := json.Marshal(nk.Key)
		require.NoError(t, err)
		assert.Contains(t, string(b), tt.want)
		assert.NotContains(t, string(b), "window_used", "counters are not part of the JSON")
		var back apikeys.Key
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, nk.RateLimit, back.RateLimit)
		assert.Equal(t, nk.Credits, back.Credits)
	}
}

func TestLimitErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&apikeys.LimitError{Err: apikeys.ErrRateLimited, RetryAfter: 1500 * time.Millisecond})
	assert.Equal(t, "apikeys: rate limit exceeded for this key; retry after 2s", err.Error())
	assert.True(t, errors.Is(err, apikeys.ErrRateLimited))
}

// TestUncachedAuthorizeCalls: without the cache, on a store that is not
// Local, a key without limits
// costs one Get per request, as before issue 13; a limited key one Spend,
// after a Get and a Spend the first time; a key whose limits were removed
// goes back to Get.
func TestUncachedAuthorizeCalls(t *testing.T) {
	t.Parallel()
	s := &spendCounter{Store: memstore.New()}
	// As a remote store: memstore is Local, and Local stores are always
	// read with Spend.
	m, err := apikeys.New(struct{ apikeys.Store }{s}, nil)
	require.NoError(t, err)
	create := func(p apikeys.CreateParams) apikeys.NewKey {
		p.Type, p.Name, p.UserID = apikeys.Public, "k", "alice"
		nk, err := m.Create(t.Context(), p)
		require.NoError(t, err)
		return nk
	}
	calls := func(key string, n int) (gets, spends int64) {
		g, sp := s.gets.Load(), s.spends.Load()
		for range n {
			_, err := m.Authorize(t.Context(), key, apikeys.Request{})
			require.NoError(t, err)
		}
		return s.gets.Load() - g, s.spends.Load() - sp
	}
	free := create(apikeys.CreateParams{})
	gets, spends := calls(free.Value, 3)
	assert.Equal(t, [2]int64{3, 0}, [2]int64{gets, spends}, "unlimited: Gets only")

	limited := create(apikeys.CreateParams{RateLimit: rate(100, 60)})
	gets, spends = calls(limited.Value, 1)
	assert.Equal(t, [2]int64{1, 1}, [2]int64{gets, spends}, "limited, first time: a Get, then a Spend")
	gets, spends = calls(limited.Value, 3)
	assert.Equal(t, [2]int64{0, 3}, [2]int64{gets, spends}, "limited, known: one Spend each")

	_, err = m.Update(t.Context(), "alice", limited.ID, apikeys.UpdateParams{RemoveRateLimit: true})
	require.NoError(t, err)
	gets, spends = calls(limited.Value, 3)
	assert.Equal(t, [2]int64{2, 1}, [2]int64{gets, spends}, "limits removed: Spend shows it once, then Gets")
}
