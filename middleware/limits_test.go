package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// limitFixture is a Manager on a clock 15 seconds into a minute, and a
// handler whose /call costs 1 and /expensive costs 3.
func limitFixture(t *testing.T) (*apikeys.Manager, http.Handler) {
	t.Helper()
	now := time.Date(2026, 6, 1, 12, 0, 15, 0, time.UTC)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return now }})
	require.NoError(t, err)
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/call", mw.Handler(echo))
	mux.Handle("/expensive", mw.Protect(middleware.Route{Cost: 3}, echo))
	return m, mux
}

func limitedKey(t *testing.T, m *apikeys.Manager, p apikeys.CreateParams) apikeys.NewKey {
	t.Helper()
	p.Type, p.Name, p.UserID = apikeys.Public, "limited", "alice"
	nk, err := m.Create(t.Context(), p)
	require.NoError(t, err)
	return nk
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	m, h := limitFixture(t)
	nk := limitedKey(t, m, apikeys.CreateParams{
		AllowedOrigins: []string{"https://app.example"},
		RateLimit:      &apikeys.RateLimit{Limit: 5, WindowSeconds: 60},
		Credits:        &apikeys.Credits{Remaining: 100, Refill: &apikeys.Refill{Amount: 100, IntervalSeconds: 3600}},
	})
	from := with(bearer(nk.Value), "Origin", "https://app.example")

	w := do(h, "GET", "/call", from)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"rate_limit";q=5;w=60, "credits";q=100;w=3600`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"rate_limit";r=4;t=45, "credits";r=99;t=3600`, w.Header().Get("RateLimit"))
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "RateLimit, RateLimit-Policy, Retry-After", w.Header().Get("Access-Control-Expose-Headers"))

	w = do(h, "GET", "/expensive", from)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"rate_limit";r=1;t=45, "credits";r=96;t=3600`, w.Header().Get("RateLimit"), "Route.Cost spends 3")

	w = do(h, "GET", "/expensive", from)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "45", w.Header().Get("Retry-After"))
	assert.Equal(t, `"rate_limit";r=1;t=45, "credits";r=96;t=3600`, w.Header().Get("RateLimit"), "a refusal spends nothing")
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"), "a widget on an allowed origin can read the 429")
	assert.Equal(t, "RateLimit, RateLimit-Policy, Retry-After", w.Header().Get("Access-Control-Expose-Headers"))
	body := decode(t, w)
	assert.Equal(t, "rate_limit", body["restriction"])
	assert.Contains(t, body["error"], "rate limit exceeded")

	w = do(h, "GET", "/call", with(bearer(nk.Value), "Origin", "https://evil.example"))
	require.Equal(t, http.StatusForbidden, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Empty(t, w.Header().Get("RateLimit"), "no counters for requests that are not the key's to make")
}

func TestCreditsExhaustedIs429(t *testing.T) {
	t.Parallel()
	m, h := limitFixture(t)
	nk := limitedKey(t, m, apikeys.CreateParams{Credits: &apikeys.Credits{Remaining: 1}})
	w := do(h, "GET", "/call", bearer(nk.Value))
	require.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit"), "credits without a refill have no policy to advertise")
	w = do(h, "GET", "/call", bearer(nk.Value))
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Empty(t, w.Header().Get("Retry-After"), "waiting cannot help credits that are never refilled")
	body := decode(t, w)
	assert.Equal(t, "credits", body["restriction"])
	assert.Contains(t, body["error"], "credits are exhausted")
}

func TestUnlimitedKeyHasNoRateLimitHeaders(t *testing.T) {
	t.Parallel()
	m, h := limitFixture(t)
	nk := limitedKey(t, m, apikeys.CreateParams{})
	w := do(h, "GET", "/call", with(bearer(nk.Value), "Origin", "https://app.example"))
	require.Equal(t, http.StatusOK, w.Code)
	for _, name := range []string{"RateLimit", "RateLimit-Policy", "Retry-After", "Access-Control-Expose-Headers"} {
		assert.Empty(t, w.Header().Get(name), name)
	}
}

func TestProtectRefusesBadCost(t *testing.T) {
	t.Parallel()
	m, _ := limitFixture(t)
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	for _, cost := range []int64{-1, apikeys.MaxQuota + 1} {
		assert.Panics(t, func() { mw.Protect(middleware.Route{Cost: cost}, echo) }, "cost %d", cost)
	}
}
