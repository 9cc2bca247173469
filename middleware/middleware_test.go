package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

type fixture struct {
	m                                    *apikeys.Manager
	web, open, private, privWeb, transit apikeys.NewKey
	deleted, expired, disabled           apikeys.NewKey
	now                                  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: clock})
	require.NoError(t, err)
	f.m = m
	create := func(p apikeys.CreateParams) apikeys.NewKey {
		if p.Type == "" {
			p.Type = apikeys.Public
		}
		p.Name, p.UserID = "k", "alice"
		nk, err := m.Create(t.Context(), p)
		require.NoError(t, err)
		return nk
	}
	f.web = create(apikeys.CreateParams{AllowedOrigins: []string{"https://allowed.example.com"}, AllowedAssistants: []string{"asst-1"}})
	f.open = create(apikeys.CreateParams{})
	f.private = create(apikeys.CreateParams{Type: apikeys.Private})
	f.privWeb = create(apikeys.CreateParams{Type: apikeys.Private, AllowedOrigins: []string{"https://admin.example.com"}})
	f.transit = create(apikeys.CreateParams{TransientAssistant: true})
	f.deleted = create(apikeys.CreateParams{})
	_, err = m.Delete(t.Context(), "alice", f.deleted.ID)
	require.NoError(t, err)
	f.expired = create(apikeys.CreateParams{ExpiresAt: f.now.Add(time.Minute)})
	f.disabled = create(apikeys.CreateParams{Disabled: true})
	f.now = f.now.Add(time.Hour)
	return f
}

// resource reads the assistant and transient flag from test headers.
func resource(r *http.Request) (string, bool, error) {
	if r.Header.Get("X-Bad-Resource") != "" {
		return "", false, errors.New("assistant_id must be a string")
	}
	return r.Header.Get("X-Assistant"), r.Header.Get("X-Transient") == "1", nil
}

// echo answers 200 with the authorized key's id.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	k, ok := middleware.Key(r)
	if !ok {
		http.Error(w, "no key in context", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, k.ID.String())
})

func newHandler(t *testing.T, m *apikeys.Manager, cfg *middleware.Config, next http.Handler) (*middleware.Middleware, http.Handler) {
	t.Helper()
	if cfg == nil {
		cfg = &middleware.Config{}
	}
	if cfg.Resource == nil {
		cfg.Resource = resource
	}
	mw, err := middleware.New(m, cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/call", mw.Handler(next))
	mux.Handle("/admin", mw.RequirePrivate(next))
	return mw, mux
}

func do(h http.Handler, method, path string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, vs := range hdr {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

func with(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), w.Body.String())
	return m
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, h := newHandler(t, f.m, nil, echo)
	tests := []struct {
		name        string
		method      string
		path        string
		hdr         http.Header
		status      int
		restriction string
		acao        string // expected Access-Control-Allow-Origin ("" = absent)
	}{
		{"bearer", "GET", "/call", bearer(f.open.Value), 200, "", ""},
		{"bearer lower-case scheme", "GET", "/call", http.Header{"Authorization": {"bearer " + f.open.Value}}, 200, "", ""},
		{"x-api-key", "GET", "/call", http.Header{"X-Api-Key": {f.open.Value}}, 200, "", ""},
		{"no key", "GET", "/call", nil, 401, "", ""},
		{"key in query string is ignored", "GET", "/call?api_key=" + f.open.Value + "&key=" + f.open.Value, nil, 401, "", ""},
		{"both headers", "GET", "/call", with(bearer(f.open.Value), "X-API-Key", f.open.Value), 400, "", ""},
		{"two authorization headers", "GET", "/call", with(bearer(f.open.Value), "Authorization", "Bearer "+f.open.Value), 400, "", ""},
		{"two x-api-key headers", "GET", "/call", http.Header{"X-Api-Key": {f.open.Value, f.open.Value}}, 400, "", ""},
		{"basic scheme", "GET", "/call", http.Header{"Authorization": {"Basic " + f.open.Value}}, 400, "", ""},
		{"bearer without token", "GET", "/call", http.Header{"Authorization": {"Bearer"}}, 400, "", ""},
		{"empty x-api-key", "GET", "/call", http.Header{"X-Api-Key": {" "}}, 400, "", ""},
		{"allowed origin", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com", "X-Assistant", "asst-1"), 200, "", "https://allowed.example.com"},
		{"no assistant named, restricted key: readable", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com"), 403, "allowed_assistants", "https://allowed.example.com"},
		{"suffix attack origin", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com.evil.com"), 403, "allowed_origins", ""},
		{"http for https", "POST", "/call", with(bearer(f.web.Value), "Origin", "http://allowed.example.com"), 403, "allowed_origins", ""},
		{"other port", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com:8443"), 403, "allowed_origins", ""},
		{"null origin", "POST", "/call", with(bearer(f.web.Value), "Origin", "null"), 403, "allowed_origins", ""},
		{"no origin, restricted key", "POST", "/call", bearer(f.web.Value), 403, "allowed_origins", ""},
		{"two origin headers", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com", "Origin", "https://allowed.example.com"), 400, "", ""},
		{"unrestricted key, any origin", "POST", "/call", with(bearer(f.open.Value), "Origin", "https://any.example"), 200, "", "https://any.example"},
		{"unrestricted key, null origin: no ACAO", "POST", "/call", with(bearer(f.open.Value), "Origin", "null"), 200, "", ""},
		{"allowed assistant", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com", "X-Assistant", "asst-1"), 200, "", "https://allowed.example.com"},
		{"other assistant", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com", "X-Assistant", "asst-2"), 403, "allowed_assistants", "https://allowed.example.com"},
		{"transient refused", "POST", "/call", with(bearer(f.web.Value), "Origin", "https://allowed.example.com", "X-Assistant", "asst-1", "X-Transient", "1"), 403, "transient_assistant", "https://allowed.example.com"},
		{"unrestricted public key, refused transient: readable", "POST", "/call", with(bearer(f.open.Value), "Origin", "https://any.example", "X-Transient", "1"), 403, "transient_assistant", "https://any.example"},
		{"invalid key from a browser: unreadable", "POST", "/call", with(bearer(f.deleted.Value), "Origin", "https://any.example"), 401, "", ""},
		{"transient allowed", "POST", "/call", with(bearer(f.transit.Value), "X-Transient", "1"), 200, "", ""},
		{"resource error", "POST", "/call", with(bearer(f.open.Value), "X-Bad-Resource", "1"), 400, "", ""},
		{"public key on private route", "GET", "/admin", bearer(f.open.Value), 403, "key_type", ""},
		{"public key on private route from its origin: readable", "GET", "/admin", with(bearer(f.web.Value), "Origin", "https://allowed.example.com"), 403, "key_type", "https://allowed.example.com"},
		{"private key on private route", "GET", "/admin", bearer(f.private.Value), 200, "", ""},
		{"private key from a browser", "GET", "/call", with(bearer(f.private.Value), "Origin", "https://any.example"), 403, "key_type", ""},
		{"private key from its allowed origin", "GET", "/admin", with(bearer(f.privWeb.Value), "Origin", "https://admin.example.com"), 200, "", "https://admin.example.com"},
		{"private key from another origin", "GET", "/admin", with(bearer(f.privWeb.Value), "Origin", "https://any.example"), 403, "key_type", ""},
		{"private key from its origin, refused assistant: readable", "GET", "/admin", with(bearer(f.privWeb.Value), "Origin", "https://admin.example.com", "X-Transient", "1"), 403, "transient_assistant", "https://admin.example.com"},
		{"private key from a browser, refused assistant: unreadable", "GET", "/call", with(bearer(f.private.Value), "Origin", "https://any.example", "X-Transient", "1"), 403, "key_type", ""},
		{"options without request-method needs a key", "OPTIONS", "/call", http.Header{"Origin": {"https://allowed.example.com"}}, 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := do(h, tt.method, tt.path, tt.hdr)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Contains(t, w.Header().Values("Vary"), "Origin")
			assert.Equal(t, tt.acao, w.Header().Get("Access-Control-Allow-Origin"))
			assert.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"))
			if tt.status == 200 {
				assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
				return
			}
			body := decode(t, w)
			assert.Equal(t, float64(tt.status), body["status"].(map[string]any)["code"])
			assert.NotEmpty(t, body["error"])
			if tt.restriction != "" {
				assert.Equal(t, tt.restriction, body["restriction"])
			}
			if tt.status == 401 {
				assert.True(t, strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="api"`))
			}
		})
	}
}

func TestKeyTypeRefusalSaysWhich(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, h := newHandler(t, f.m, nil, echo)

	body := decode(t, do(h, "GET", "/admin", bearer(f.open.Value)))
	assert.Equal(t, "public", body["key_type"])
	assert.Equal(t, "private", body["required_key_type"])
	assert.Contains(t, body["error"], "requires a private key, but a public key was used")

	body = decode(t, do(h, "GET", "/call", with(bearer(f.private.Value), "Origin", "https://any.example")))
	assert.Equal(t, "private keys must not be used from a browser; use a public key", body["error"])
}

// TestInvalidKeysLookAlike: every kind of invalid key gets the same bytes.
func TestInvalidKeysLookAlike(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, h := newHandler(t, f.m, nil, echo)
	wrongSecret, unknown := keytest.WrongSecret(f.open.Value), keytest.UnknownID(f.open.Value)
	var first *httptest.ResponseRecorder
	for name, key := range map[string]string{
		"malformed": "ak_pk_garbage", "unknown": unknown, "wrong secret": wrongSecret,
		"deleted": f.deleted.Value, "expired": f.expired.Value, "disabled": f.disabled.Value,
	} {
		w := do(h, "GET", "/call", bearer(key))
		require.Equal(t, 401, w.Code, name)
		assert.Equal(t, `Bearer realm="api", error="invalid_token"`, w.Header().Get("WWW-Authenticate"), name)
		if first == nil {
			first = w
			continue
		}
		assert.Equal(t, first.Body.String(), w.Body.String(), name)
		assert.Equal(t, first.Header(), w.Header(), name)
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, h := newHandler(t, f.m, &middleware.Config{MaxAge: time.Hour, AllowHeaders: []string{"X-Request-Id"}}, echo)
	pre := http.Header{"Origin": {"https://allowed.example.com"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization, content-type"}}
	for name, hdr := range map[string]http.Header{
		"without a key":  pre,
		"with a key":     with(pre, "Authorization", "Bearer "+f.web.Value),
		"with a bad key": with(pre, "Authorization", "Bearer nope"),
	} {
		w := do(h, "OPTIONS", "/call", hdr)
		require.Equal(t, 204, w.Code, name)
		assert.Equal(t, "https://allowed.example.com", w.Header().Get("Access-Control-Allow-Origin"), name)
		allowed := w.Header().Get("Access-Control-Allow-Headers")
		for _, hd := range []string{"Authorization", "X-API-Key", "Content-Type", "X-Request-Id"} {
			assert.Contains(t, allowed, hd, name)
		}
		assert.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "POST")
		assert.Equal(t, "3600", w.Header().Get("Access-Control-Max-Age"), name)
		assert.Contains(t, w.Header().Values("Vary"), "Origin", name)
		assert.Empty(t, w.Body.String())
	}
	for _, origin := range []string{"null", "https://a.example.com/", "*", "HTTPS://A.EXAMPLE.COM"} {
		w := do(h, "OPTIONS", "/call", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"}})
		require.Equal(t, 204, w.Code)
		assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), origin)
	}
	w := do(h, "OPTIONS", "/call", http.Header{"Origin": {"https://a.example", "https://b.example"}, "Access-Control-Request-Method": {"GET"}})
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), "two origins")
}

// TestPreflightHugeRequestHeaders: the middleware never parses
// Access-Control-Request-Headers, so 8 MiB of it costs nothing extra.
func TestPreflightHugeRequestHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, h := newHandler(t, f.m, nil, echo)
	huge := strings.Repeat("x-custom-header-name, ", 8<<20/22)
	w := do(h, "OPTIONS", "/call", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {huge}})
	require.Equal(t, 204, w.Code)
	assert.Less(t, len(w.Header().Get("Access-Control-Allow-Headers")), 200, "the answer does not grow with the request")
}

func TestHandlerHeadersKept(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(http.StatusAccepted)
	})
	_, h := newHandler(t, f.m, nil, own)
	w := do(h, "GET", "/call", with(bearer(f.open.Value), "Origin", "https://a.example"))
	require.Equal(t, http.StatusAccepted, w.Code)
	vary := strings.Join(w.Header().Values("Vary"), ",")
	assert.Contains(t, vary, "Accept-Encoding")
	assert.Contains(t, vary, "Origin")
	assert.Equal(t, "max-age=60", w.Header().Get("Cache-Control"))

	// Implicit 200 through Write also gets Vary.
	writeOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Cookie")
		_, _ = w.Write([]byte("hi"))
	})
	_, h = newHandler(t, f.m, nil, writeOnly)
	w = do(h, "GET", "/call", bearer(f.open.Value))
	assert.Contains(t, strings.Join(w.Header().Values("Vary"), ","), "Origin")
}

// failingStore fails every call, like a store whose server is down.
type failingStore struct{ apikeys.Store }

func (failingStore) Get(context.Context, uuid.UUID) (apikeys.Record, error) {
	return apikeys.Record{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

func (failingStore) Spend(context.Context, apikeys.SpendRequest) (apikeys.Record, bool, error) {
	return apikeys.Record{}, false, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

func TestStoreFailureIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := apikeys.New(failingStore{}, nil)
	require.NoError(t, err)
	var logs bytes.Buffer
	_, h := newHandler(t, m, &middleware.Config{ErrorLog: slog.New(slog.NewTextHandler(&logs, nil))}, echo)
	w := do(h, "GET", "/call", with(bearer(f.open.Value), "Origin", "https://a.example"))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotContains(t, w.Body.String(), f.open.Value[6:20])
	assert.NotContains(t, w.Body.String(), "connection refused", "store details stay in the log")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, logs.String(), "connection refused")
	assert.NotContains(t, logs.String(), f.open.Value[6:20], "the key is never logged")
}

func TestNew(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		m   *apikeys.Manager
		cfg *middleware.Config
	}{
		"nil manager":       {nil, nil},
		"quote in realm":    {m, &middleware.Config{Realm: `a"b`}},
		"max age too big":   {m, &middleware.Config{MaxAge: 3 * time.Hour}},
		"header with comma": {m, &middleware.Config{AllowHeaders: []string{"a,b"}}},
	} {
		mw, err := middleware.New(tc.m, tc.cfg)
		assert.Error(t, err, name)
		assert.Nil(t, mw, name)
	}
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	require.NotNil(t, mw)

	// Negative turns preflight caching off, as negative durations do in
	// every Config of the module.
	mw, err = middleware.New(m, &middleware.Config{MaxAge: -time.Second})
	require.NoError(t, err)
	w := do(mw.Handler(echo), "OPTIONS", "/", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"POST"}})
	assert.Equal(t, "0", w.Header().Get("Access-Control-Max-Age"))
}

func TestPeekBody(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"assistant_id":"a"}`))
	b, err := middleware.PeekBody(r, 100)
	require.NoError(t, err)
	assert.Equal(t, `{"assistant_id":"a"}`, string(b))
	again, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, b, again, "the body is put back")

	r = httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 101)))
	_, err = middleware.PeekBody(r, 100)
	assert.ErrorIs(t, err, middleware.ErrBodyTooLarge)
	whole, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Len(t, whole, 101, "a body over the limit is put back whole (found in review)")

	for _, limit := range []int64{0, -1, 1<<63 - 1} {
		r = httptest.NewRequest("POST", "/", strings.NewReader("abc"))
		_, err = middleware.PeekBody(r, limit)
		assert.Error(t, err, "limit %d", limit)
		rest, _ := io.ReadAll(r.Body)
		assert.Equal(t, "abc", string(rest), "a refused limit leaves the body alone")
	}
}

// TestMalformedKeySkipsResource: a malformed key is refused before the
// service's Resource function runs.
func TestMalformedKeySkipsResource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	called := false
	_, h := newHandler(t, f.m, &middleware.Config{Resource: func(*http.Request) (string, bool, error) {
		called = true
		return "", false, nil
	}}, echo)
	w := do(h, "POST", "/call", bearer("ak_pk_not-a-key"))
	require.Equal(t, 401, w.Code)
	assert.False(t, called, "Resource ran for a malformed key")
	valid := do(h, "POST", "/call", bearer(keytest.UnknownID(f.open.Value)))
	assert.Equal(t, valid.Body.String(), w.Body.String(), "the same answer as a well-formed unknown key")
	assert.True(t, called, "Resource runs for well-formed keys")
}

// TestVaryWhenHandlerWritesNothing: a handler that replaces Vary and
// returns without writing still answers with Origin in Vary (found in
// review; needs a real server, where net/http writes the headers).
func TestVaryWhenHandlerWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	silent := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
	})
	_, h := newHandler(t, f.m, nil, silent)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/call", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.open.Value)
	req.Header.Set("Origin", "https://a.example")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "https://a.example", res.Header.Get("Access-Control-Allow-Origin"))
	vary := strings.Join(res.Header.Values("Vary"), ",")
	assert.Contains(t, vary, "Origin")
	assert.Contains(t, vary, "Accept-Encoding")
}
