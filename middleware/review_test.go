package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// Security review of issue 12: client addresses.

// ipFixture is a key limited to 203.0.113.0/24 behind a middleware that
// trusts the proxies in 10.0.0.0/8.
func ipFixture(t *testing.T) (string, http.Handler) {
	t.Helper()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "office", UserID: "u", AllowedIPs: []string{"203.0.113.0/24"}})
	require.NoError(t, err)
	mw, err := middleware.New(m, &middleware.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	require.NoError(t, err)
	return nk.Value, mw.Handler(echo)
}

func viaProxy(key string, h http.Handler, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:4000" // the trusted proxy
	r.Header.Set("Authorization", "Bearer "+key)
	for k, vs := range hdr {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestReviewClientForwardedThroughXFFProxy: the usual proxy (nginx's
// $proxy_add_x_forwarded_for, AWS ALB, most CDNs) appends the client to
// X-Forwarded-For and passes every other header through untouched. A
// client that sends its own "Forwarded: for=<any address>" then picks its
// address: the middleware prefers Forwarded whenever the request has one,
// and never looks at the X-Forwarded-For entry the trusted proxy wrote.
// (middleware's own test "forwarded wins" asserts this behaviour.)
func TestReviewClientForwardedThroughXFFProxy(t *testing.T) {
	t.Parallel()
	key, h := ipFixture(t)
	w := viaProxy(key, h, http.Header{
		"Forwarded":       {"for=203.0.113.9"}, // sent by the client, passed through
		"X-Forwarded-For": {"198.51.100.1"},    // appended by the trusted proxy: the real client
	})
	assert.Equal(t, http.StatusForbidden, w.Code, "a client outside allowed_ips forged its address with Forwarded")
}

// TestReviewNestedBracketsRefused: parseHop strips brackets recursively,
// so "[[[203.0.113.5]]]" is read as 203.0.113.5. Beyond accepting what is
// no address, each level re-scans the whole rest (netip.ParseAddr and
// ParseAddrPort), so the cost is quadratic in the header's length: measured
// on this machine, a 20 kB Forwarded header costs 0.2 s of CPU, 200 kB 13 s
// and 800 kB (under net/http's 1 MB header limit) 3.5 minutes, for one
// request with any well-formed key (forged keys are free), before Authorize.
func TestReviewNestedBracketsRefused(t *testing.T) {
	t.Parallel()
	key, h := ipFixture(t)
	nest := func(n int) string { return strings.Repeat("[", n) + "203.0.113.5" + strings.Repeat("]", n) }
	for _, hdr := range []http.Header{
		{"X-Forwarded-For": {nest(2)}},
		{"Forwarded": {`for="` + nest(2) + `"`}},
		{"Forwarded": {`for="` + nest(2000) + `"`}},
	} {
		w := viaProxy(key, h, hdr)
		assert.Equal(t, http.StatusForbidden, w.Code, "nested brackets read as an address: %.40s", hdr)
	}
}
