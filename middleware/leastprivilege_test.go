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

func TestScopesOverHTTP(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	mk := func(scopes ...string) string {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u", Scopes: scopes})
		require.NoError(t, err)
		return nk.Value
	}
	calls, reader, open := mk("calls:write"), mk("calls:read"), mk()
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/calls", mw.Protect(middleware.Route{Scopes: middleware.Scopes("calls:write")}, echo))
	mux.Handle("/anything", mw.Handler(echo))
	tests := []struct {
		name, path, key string
		status          int
		challenge       string
	}{
		{"held", "/calls", calls, 200, ""},
		{"unscoped key", "/calls", open, 200, ""},
		{"missing scope", "/calls", reader, 403, `Bearer realm="api", error="insufficient_scope", scope="calls:write"`},
		{"route names no scope", "/anything", calls, 403, `Bearer realm="api", error="insufficient_scope"`},
		{"route names no scope, unscoped key", "/anything", open, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := do(mux, "POST", tt.path, bearer(tt.key))
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Equal(t, tt.challenge, w.Header().Get("WWW-Authenticate"))
			if tt.status == 403 {
				assert.Equal(t, "scopes", decode(t, w)["restriction"])
			}
		})
	}
}

func TestAllowedIPsOverHTTP(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u", AllowedIPs: []string{"203.0.113.0/24", "2001:db8::/32"}})
	require.NoError(t, err)
	mw, err := middleware.New(m, &middleware.Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	}})
	require.NoError(t, err)
	h := mw.Handler(echo)
	tests := []struct {
		name   string
		remote string
		hdr    http.Header
		status int
	}{
		{"direct, allowed", "203.0.113.5:4000", nil, 200},
		{"direct, other", "198.51.100.1:4000", nil, 403},
		{"direct ipv6, allowed", "[2001:db8::7]:4000", nil, 200},
		{"untrusted peer's forwarding header is ignored", "198.51.100.1:4000", http.Header{"X-Forwarded-For": {"203.0.113.5"}}, 403},
		{"trusted proxy, client forwarded", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"203.0.113.5"}}, 200},
		{"trusted proxy, forged leftmost", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"203.0.113.5, 198.51.100.1"}}, 403},
		{"two trusted proxies", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.5, 10.0.0.3"}}, 200},
		{"several header lines", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"198.51.100.1", "203.0.113.5, 10.9.9.9"}}, 200},
		{"client-sent Forwarded is ignored", "10.0.0.2:4000", http.Header{"Forwarded": {`for=203.0.113.9;proto=https`}, "X-Forwarded-For": {"198.51.100.1"}}, 403},
		{"bracketed ipv6", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"[2001:db8::5]"}}, 200},
		{"nested brackets", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"[[203.0.113.5]]"}}, 403},
		{"long entry", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {strings.Repeat("[", 5000) + "203.0.113.5" + strings.Repeat("]", 5000)}}, 403},
		{"garbage hop", "10.0.0.2:4000", http.Header{"X-Forwarded-For": {"203.0.113.5, nonsense"}}, 403},
		{"trusted proxy, no header", "10.0.0.2:4000", nil, 403},
		{"not an IP", "@unix", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("Authorization", "Bearer "+nk.Value)
			for k, vs := range tt.hdr {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.status == 403 {
				assert.Equal(t, "allowed_ips", decode(t, w)["restriction"])
			}
		})
	}
	_, err = middleware.New(m, &middleware.Config{TrustedProxies: []netip.Prefix{{}}})
	assert.Error(t, err, "an invalid trusted prefix")
	_, err = middleware.New(m, &middleware.Config{ForwardedHeader: "X-Real-IP"})
	assert.Error(t, err, "an unknown forwarding header")
}

// TestForwardedHeader: with ForwardedHeader "Forwarded", only RFC 7239's
// header is read.
func TestForwardedHeader(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u", AllowedIPs: []string{"203.0.113.0/24", "2001:db8::/32"}})
	require.NoError(t, err)
	mw, err := middleware.New(m, &middleware.Config{ForwardedHeader: "Forwarded", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	require.NoError(t, err)
	h := mw.Handler(echo)
	for _, tt := range []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"forwarded", http.Header{"Forwarded": {`for=203.0.113.9;proto=https`}}, 200},
		{"ipv6 with port", http.Header{"Forwarded": {`for="[2001:db8::5]:4711"`}}, 200},
		{"two elements, client forged the left one", http.Header{"Forwarded": {`for=203.0.113.9, for=198.51.100.1`}}, 403},
		{"obfuscated", http.Header{"Forwarded": {`for=_hidden`}}, 403},
		{"no for", http.Header{"Forwarded": {`proto=https`}}, 403},
		{"client-sent X-Forwarded-For is ignored", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=198.51.100.1"}}, 403},
		{"nested brackets", http.Header{"Forwarded": {`for="[[2001:db8::5]]"`}}, 403},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.2:4000"
		r.Header.Set("Authorization", "Bearer "+nk.Value)
		for k, vs := range tt.hdr {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tt.status, w.Code, tt.name)
	}
}

func TestScopesPanicsOnNonScope(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"calls", "calls:*", "Calls:write", ""} {
		assert.Panics(t, func() { middleware.Scopes("calls:write", bad) }, "%q", bad)
	}
	assert.NotPanics(t, func() { middleware.Scopes("calls:write", "api_keys:read") })
}
