package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/faultproxy"
	"github.com/keyward/apikeys/internal/storeurl"
	"github.com/keyward/apikeys/memstore"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func post(t testing.TB, url, key, origin, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res, m
}

// TestRun starts the demo as the README does, uses it, and stops it the way
// SIGINT does.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-bootstrap", "alice, bob"}, &out, &errOut, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, errOut.String())
	}
	keyLine := regexp.MustCompile(`(?m)^bootstrap private key for (\w+): (ak_sk_[0-9A-Za-z]{72})$`)
	printed := out.String()
	found := keyLine.FindAllStringSubmatch(printed, -1)
	require.Len(t, found, 2, printed)
	assert.Equal(t, "alice", found[0][1])
	assert.Equal(t, "bob", found[1][1])
	// .ci/run waits for "listening on", then reads the keys: they come first.
	lines := strings.Split(strings.TrimSuffix(printed, "\n"), "\n")
	assert.Truef(t, strings.HasPrefix(lines[len(lines)-1], "listening on http://"+addr+" (store: memory)"),
		"the last line when ready is %q; want listening on, after the bootstrap keys", lines[len(lines)-1])
	base := "http://" + addr

	res, body := post(t, base+"/api_keys", found[0][2], "",
		`{"api_key":{"name":"web","key_type":"public","allowed_origins":["https://shop.example"],"allowed_assistants":["asst-1"]}}`)
	require.Equal(t, 201, res.StatusCode, body)
	public := body["data"].(map[string]any)["key_value"].(string)
	mk := func(fields string) string {
		res, body := post(t, base+"/api_keys", found[0][2], "", `{"api_key":{"name":"k","key_type":"public","allowed_assistants":["asst-1"],`+fields+`}}`)
		require.Equal(t, 201, res.StatusCode, body)
		return body["data"].(map[string]any)["key_value"].(string)
	}
	callsRead, callsWrite := mk(`"scopes":["calls:read"]`), mk(`"scopes":["calls:*"]`)
	otherNet, loopback := mk(`"allowed_ips":["192.0.2.0/24"]`), mk(`"allowed_ips":["127.0.0.0/8","::1"]`)
	disabled := mk(`"enabled":false`)

	for _, tt := range []struct {
		name, key, origin, body string
		status                  int
	}{
		{"public key, allowed origin", public, "https://shop.example", `{"assistant_id":"asst-1"}`, 201},
		{"public key, other assistant", public, "https://shop.example", `{"assistant_id":"asst-2"}`, 403},
		{"public key, transient", public, "https://shop.example", `{"assistant":{"model":"x"}}`, 403},
		{"public key, other origin", public, "https://evil.example", `{"assistant_id":"asst-1"}`, 403},
		{"bootstrap key (full authority), server side, transient", found[1][2], "", `{"assistant":{"model":"x"}}`, 201},
		{"bad body", public, "https://shop.example", `{"assistant_id":"a","assistant":{}}`, 400},
		{"scope calls:read, needs calls:write", callsRead, "", `{"assistant_id":"asst-1"}`, 403},
		{"scope calls:*", callsWrite, "", `{"assistant_id":"asst-1"}`, 201},
		{"other network", otherNet, "", `{"assistant_id":"asst-1"}`, 403},
		{"loopback allowed", loopback, "", `{"assistant_id":"asst-1"}`, 201},
		{"disabled key", disabled, "", `{"assistant_id":"asst-1"}`, 401},
	} {
		res, body := post(t, base+"/call/web", tt.key, tt.origin, tt.body)
		assert.Equal(t, tt.status, res.StatusCode, "%s: %v", tt.name, body)
		if tt.status == 201 && !strings.Contains(tt.body, `"assistant":`) {
			assert.Equal(t, "asst-1", body["assistant_id"])
			assert.NotEmpty(t, body["call_id"])
		}
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not shut down")
	}
	assert.Contains(t, out.String(), "shutting down")
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-store", "cassandra://x"}, {"-nope"}, {"-addr", "256.0.0.1:99999"}} {
		err := run(t.Context(), args, &syncBuffer{}, &syncBuffer{}, nil)
		assert.Error(t, err, args)
	}
}

// startRun runs the server with args until it is ready (and then stops it)
// or it fails, and returns what it printed and returned. A guard of a
// minute stops a server that neither gets ready nor fails.
func startRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut, ready) }()
	select {
	case <-ready:
		cancel()
		err = <-done
	case err = <-done:
	}
	return out.String(), errOut.String(), err
}

// TestNoCredentialsPrinted: a password in -store appears nowhere in what
// the server prints or returns, whether the store is unreachable, refuses
// it, or works (regression: "listening on ... (store: postgres://root:PW@...)"
// and "store %q: ..." printed it).
func TestNoCredentialsPrinted(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-S3cret"
	closed := faultproxy.RefusedAddr(t)
	mr := miniredis.RunT(t)
	mr.RequireAuth(pw)
	for _, tc := range []struct {
		name, spec string
		secrets    []string // none may appear; pw when empty
		wantErr    bool
	}{
		{name: "redis, closed port", spec: "redis://:" + pw + "@" + closed + "/0", wantErr: true},
		{name: "redis with user, closed port", spec: "rediss://default:" + pw + "@" + closed + "/0", wantErr: true},
		{name: "redis, bad database", spec: "redis://:" + pw + "@" + closed + "/nodb", wantErr: true},
		{name: "redis, reachable", spec: "redis://:" + pw + "@" + mr.Addr() + "/0"},
		{name: "redis, reachable, wrong password", spec: "redis://:Wr0ng-" + pw + "@" + mr.Addr() + "/0", secrets: []string{"Wr0ng-" + pw}, wantErr: true},
		{name: "postgres, closed port", spec: "postgres://root:" + pw + "@" + closed + "/test?sslmode=disable", wantErr: true},
		{name: "postgres, password parameter", spec: "postgres://root@" + closed + "/test?sslmode=disable&password=" + pw, wantErr: true},
		{name: "postgres, bad port", spec: "postgresql://root:" + pw + "@127.0.0.1:port/test", wantErr: true},
		{name: "mysql, closed port", spec: "mysql://root:" + pw + "@" + closed + "/test", wantErr: true},
		{name: "mysql, bad port", spec: "mysql://root:" + pw + "@127.0.0.1:port/test", wantErr: true},
		{name: "escaped password", spec: "mysql://root:" + pw + "%2F%40x@" + closed + "/test", secrets: []string{pw, pw + "/@x", pw + "%2F%40x"}, wantErr: true},
		{name: "driver DSN, not a -store form", spec: "root:" + pw + "@tcp(" + closed + ")/test", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := startRun(t, "-addr", "127.0.0.1:0", "-store", tc.spec)
			if tc.wantErr {
				require.Error(t, err, "stdout:\n%s", stdout)
			} else {
				require.NoError(t, err, "stderr:\n%s", stderr)
				assert.Contains(t, stdout, "(store: redis://:xxxxx@"+mr.Addr()+"/0)")
			}
			secrets := tc.secrets
			if secrets == nil {
				secrets = []string{pw}
			}
			for _, secret := range secrets {
				assert.NotContains(t, stdout, secret, "stdout")
				assert.NotContains(t, stderr, secret, "stderr")
				if err != nil {
					assert.NotContains(t, err.Error(), secret, "the returned error")
				}
			}
			t.Logf("stdout: %q, stderr: %q, err: %v", stdout, stderr, err)
		})
	}
}

// TestListenFailsFirst: a server that cannot take its address fails before
// it creates a bootstrap key (regression: it created and printed one, then
// failed to listen).
func TestListenFailsFirst(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() })
	spec := persistentStore(t) // outlives the run

	stdout, _, err := startRun(t, "-addr", taken.Addr().String(), "-store", spec)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.NotContains(t, stdout, "bootstrap private key")

	opened, err := storeurl.Open(t.Context(), spec, "", nil)
	require.NoError(t, err)
	t.Cleanup(opened.Close)
	m, err := apikeys.New(opened.Store, nil)
	require.NoError(t, err)
	page, err := m.List(t.Context(), "demo", apikeys.ListParams{})
	require.NoError(t, err)
	assert.Empty(t, page.Keys, "the failed start created a key")
}

// limitNow is the clock of the limit tests: 15 s into an hour, so that a
// 3600 s window has 3585 s left.
var limitNow = time.Date(2026, 6, 1, 12, 0, 15, 0, time.UTC)

// fixedClockDemo serves the demo's handler, as run mounts it, on a Manager
// whose clock stands still at limitNow, and returns its URL and the
// bootstrap private key bootstrapKeys made for user "demo".
func fixedClockDemo(t *testing.T) (base, bootstrap string) {
	t.Helper()
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return limitNow }})
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, bootstrapKeys(t.Context(), m, []string{"demo"}, &out))
	found := regexp.MustCompile(`bootstrap private key for demo: (ak_sk_\w+)`).FindStringSubmatch(out.String())
	require.NotNil(t, found, out.String())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, found[1]
}

// createKey creates a key through the demo's REST API with the private key
// admin, from the JSON members in fields, and returns its value and id.
func createKey(t testing.TB, base, admin, fields string) (value, id string) {
	t.Helper()
	res, body := post(t, base+"/api_keys", admin, "", `{"api_key":{"name":"limited",`+fields+`}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	data := body["data"].(map[string]any)
	return data["key_value"].(string), data["id"].(string)
}

// TestWebCallLimits: POST /call/web with a public key that has a rate limit
// or credits answers 201 until they are spent, then 429 exactly as the
// middleware renders it: the restriction in the body, Retry-After when
// waiting helps, the RateLimit headers, and CORS headers that let a page
// on an origin the key allows read all of it. A page on another origin
// gets a 403 it cannot read, and spends nothing.
func TestWebCallLimits(t *testing.T) {
	t.Parallel()
	const allowed, other = "https://shop.example", "https://evil.example"
	base, admin := fixedClockDemo(t)
	for _, tt := range []struct {
		name, limits string
		policy       string    // RateLimit-Policy of each answer; "" for none
		rateLimit    [3]string // RateLimit of the three answers
		retryAfter   string    // of the 429
		restriction  string    // of the 429
		message      string    // in the 429's "error"
	}{
		{
			name: "rate limit", limits: `"rate_limit":{"limit":2,"window_seconds":3600}`,
			policy:     `"rate_limit";q=2;w=3600`,
			rateLimit:  [3]string{`"rate_limit";r=1;t=3585`, `"rate_limit";r=0;t=3585`, `"rate_limit";r=0;t=3585`},
			retryAfter: "3585", restriction: "rate_limit", message: "rate limit exceeded",
		},
		{
			// No refill: no policy to advertise, and waiting cannot help.
			name: "credits, never refilled", limits: `"credits":{"remaining":2,"refill":null}`,
			restriction: "credits", message: "credits are exhausted",
		},
		{
			name: "credits, refilled every 10 minutes", limits: `"credits":{"remaining":2,"refill":{"amount":2,"interval_seconds":600}}`,
			policy:     `"credits";q=2;w=600`,
			rateLimit:  [3]string{`"credits";r=1;t=600`, `"credits";r=0;t=600`, `"credits";r=0;t=600`},
			retryAfter: "600", restriction: "credits", message: "credits are exhausted",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, _ := createKey(t, base, admin,
				`"key_type":"public","allowed_origins":["`+allowed+`"],"allowed_assistants":["asst-1"],`+tt.limits)

			// First from an origin the key does not allow: unreadable, and
			// nothing spent (the two calls below still pass).
			res, body := post(t, base+"/call/web", key, other, `{"assistant_id":"asst-1"}`)
			require.Equal(t, http.StatusForbidden, res.StatusCode, body)
			assert.Equal(t, "allowed_origins", body["restriction"])
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "RateLimit", "RateLimit-Policy", "Retry-After"} {
				assert.Empty(t, res.Header.Get(h), "%s on the answer to an origin the key does not allow", h)
			}

			for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests} {
				res, body := post(t, base+"/call/web", key, allowed, `{"assistant_id":"asst-1"}`)
				require.Equal(t, want, res.StatusCode, "call %d: %v", i+1, body)
				h := res.Header
				assert.Equal(t, allowed, h.Get("Access-Control-Allow-Origin"), "call %d", i+1)
				assert.Equal(t, "RateLimit, RateLimit-Policy, Retry-After", h.Get("Access-Control-Expose-Headers"), "call %d", i+1)
				assert.Contains(t, h.Values("Vary"), "Origin", "call %d", i+1)
				assert.Equal(t, tt.policy, h.Get("RateLimit-Policy"), "call %d", i+1)
				assert.Equal(t, tt.rateLimit[i], h.Get("RateLimit"), "call %d", i+1)
				if want == http.StatusCreated {
					assert.Empty(t, h.Get("Retry-After"), "call %d", i+1)
					assert.Equal(t, "asst-1", body["assistant_id"], "call %d", i+1)
					continue
				}
				assert.Equal(t, tt.retryAfter, h.Get("Retry-After"))
				assert.Equal(t, tt.restriction, body["restriction"])
				assert.Contains(t, body["error"], tt.message)
				assert.Equal(t, float64(http.StatusTooManyRequests), body["status"].(map[string]any)["code"])
				assert.Contains(t, h.Get("Content-Type"), "application/json")
			}
		})
	}
}

// runDemo runs the demo with args, as main does, until the test ends, and
// returns its URL and what it printed.
func runDemo(t *testing.T, args ...string) (base string, stdout *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out, &errOut, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, errOut.String())
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr, &out
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("run returned early: %v\n%s", err, errOut.String())
	}
	return "", nil
}

// TestRunLimits: the 429 of a spent key, its headers and its body, come
// out of the demo as run serves it, on each store that runs without a
// server; with a password in -store, whose redaction of the log and of
// errors must leave the answers alone.
func TestRunLimits(t *testing.T) {
	t.Parallel()
	const pw, allowed = "Sup3r-S3cret", "https://shop.example"
	mr := miniredis.RunT(t)
	mr.RequireAuth(pw)
	for _, tc := range []struct{ name, spec string }{
		{"memory", "memory"},
		{"redis with a password", "redis://:" + pw + "@" + mr.Addr() + "/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := "limits-" + strings.ToLower(rand.Text()[:8])
			base, out := runDemo(t, "-store", tc.spec, "-bootstrap", user)
			found := regexp.MustCompile(`bootstrap private key for [\w-]+: (ak_sk_\w+)`).FindStringSubmatch(out.String())
			require.NotNil(t, found, out.String())
			// Refills count from when the credits are set, not from the
			// epoch: the refill is an hour after creation, whatever the
			// clock says now.
			key, _ := createKey(t, base, found[1], `"key_type":"public","allowed_origins":["`+allowed+`"],"allowed_assistants":["asst-1"],`+
				`"credits":{"remaining":1,"refill":{"amount":1,"interval_seconds":3600}}`)

			res, body := post(t, base+"/call/web", key, allowed, `{"assistant_id":"asst-1"}`)
			require.Equal(t, http.StatusCreated, res.StatusCode, body)
			res, body = post(t, base+"/call/web", key, allowed, `{"assistant_id":"asst-1"}`)
			require.Equal(t, http.StatusTooManyRequests, res.StatusCode, body)
			assert.Equal(t, "credits", body["restriction"])
			assert.Contains(t, body["error"], "credits are exhausted")
			h := res.Header
			assert.Equal(t, allowed, h.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, "RateLimit, RateLimit-Policy, Retry-After", h.Get("Access-Control-Expose-Headers"))
			assert.Equal(t, `"credits";q=1;w=3600`, h.Get("RateLimit-Policy"))
			wait, err := strconv.Atoi(h.Get("Retry-After"))
			require.NoError(t, err, "Retry-After %q", h.Get("Retry-After"))
			assert.True(t, wait >= 1 && wait <= 3600, "Retry-After %d: the refill is at most an hour away", wait)
			assert.Equal(t, `"credits";r=0;t=`+strconv.Itoa(wait), h.Get("RateLimit"), "RateLimit's t is Retry-After")
		})
	}
}

// mintDemoToken asks the demo's backend, POST /demo/token, for a token for
// the page on origin ("" for no Origin header) and assistant, and returns
// the answer.
func mintDemoToken(t testing.TB, base, origin, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/demo/token", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res, m
}

// callWith presents credential to POST /call/web in header ("Authorization"
// as Bearer, or "X-API-Key"), from origin ("" for none).
func callWith(t testing.TB, base, header, credential, origin, assistant string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/call/web", strings.NewReader(`{"assistant_id":"`+assistant+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if header == "Authorization" {
		credential = "Bearer " + credential
	}
	req.Header.Set(header, credential)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res, m
}

// TestDemoToken: the demo's backend mints, for the page that asks, a token
// from the bootstrap key that POST /call/web accepts from that page's
// origin, for that assistant, as Authorization: Bearer only; and mints
// nothing for another origin, or without a bootstrap user.
func TestDemoToken(t *testing.T) {
	t.Parallel()
	base, out := runDemo(t, "-bootstrap", "alice")
	const evil = "http://evil.example"
	found := regexp.MustCompile(`bootstrap private key for alice: (ak_sk_\w+)`).FindStringSubmatch(out.String())
	require.NotNil(t, found, out.String())
	assert.NotContains(t, out.String(), "warning", "the memory store needs no shared token key")

	before := time.Now()
	res, body := mintDemoToken(t, base, base, `{"assistant_id":"asst-1"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	tok, _ := body["token"].(string)
	require.True(t, apikeys.LooksLikeToken(tok), "token %q", tok)
	expires, err := time.Parse(time.RFC3339, body["expires_at"].(string))
	require.NoError(t, err)
	assert.True(t, !expires.Before(before.Add(demoTokenTTL).Truncate(time.Second)) && !expires.After(time.Now().Add(demoTokenTTL)),
		"expires_at %v: 10 minutes after the mint", expires)
	// key_id is the bootstrap key's.
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/api_keys/"+body["key_id"].(string), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+found[1])
	got, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got.Body.Close()
	assert.Equal(t, http.StatusOK, got.StatusCode, "key_id names the signed-in user's key")

	for _, tt := range []struct {
		name, header, origin, assistant string
		status                          int
		restriction                     string
	}{
		{"from the page's origin", "Authorization", base, "asst-1", 201, ""},
		{"again (the verified token is cached)", "Authorization", base, "asst-1", 201, ""},
		{"from another origin", "Authorization", evil, "asst-1", 403, "allowed_origins"},
		{"without an origin", "Authorization", "", "asst-1", 403, "allowed_origins"},
		{"for another assistant", "Authorization", base, "asst-2", 403, "allowed_assistants"},
		{"as X-API-Key", "X-API-Key", base, "asst-1", 401, ""},
	} {
		res, body := callWith(t, base, tt.header, tok, tt.origin, tt.assistant)
		assert.Equal(t, tt.status, res.StatusCode, "%s: %v", tt.name, body)
		switch tt.status {
		case 201:
			assert.Equal(t, tt.assistant, body["assistant_id"], tt.name)
			assert.Equal(t, base, res.Header.Get("Access-Control-Allow-Origin"), tt.name)
		case 403:
			assert.Equal(t, tt.restriction, body["restriction"], tt.name)
		}
		if tt.origin != base {
			assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), tt.name)
		}
	}
	// A token acts as a public key: it can manage no keys.
	res, body = post(t, base+"/api_keys", tok, base, `{"api_key":{"name":"x","key_type":"public"}}`)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a token managing keys: %v", body)
	assert.Equal(t, "key_type", body["restriction"])

	for _, tt := range []struct {
		name, origin, body string
		status             int
		says               string
	}{
		{"another origin", evil, `{"assistant_id":"asst-1"}`, 403, "own pages"},
		{"the same host on another port", "http://127.0.0.1:1", `{"assistant_id":"asst-1"}`, 403, "own pages"},
		{"no Origin", "", `{"assistant_id":"asst-1"}`, 403, "own pages"},
		{"Origin null", "null", `{"assistant_id":"asst-1"}`, 403, "own pages"},
		{"no assistant", base, `{}`, 400, "assistant_id"},
		{"unknown field", base, `{"assistant_id":"asst-1","ttl_seconds":86400}`, 400, "assistant_id"},
		{"bad assistant id", base, `{"assistant_id":"no spaces"}`, 400, "allowed_assistants"},
	} {
		res, body := mintDemoToken(t, base, tt.origin, tt.body)
		assert.Equal(t, tt.status, res.StatusCode, "%s: %v", tt.name, body)
		assert.Contains(t, body["error"], tt.says, tt.name)
		assert.Nil(t, body["token"], tt.name)
	}
	res, err = http.Get(base + "/demo/token")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)

	// Without a signed-in user, a clear refusal.
	bare, _ := runDemo(t, "-bootstrap", "")
	res, body = mintDemoToken(t, bare, bare, `{"assistant_id":"asst-1"}`)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, body)
	assert.Contains(t, body["error"], "-bootstrap USER")
}

// TestDemoTokenNoBootstrapKey: a signed-in user without a usable bootstrap
// key (here: disabled) gets a clear refusal, and once it is enabled again,
// a token.
func TestDemoTokenNoBootstrapKey(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), &apikeys.Config{TokenKeys: mustTokenKeys(t, "")})
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	res, body := mintDemoToken(t, srv.URL, srv.URL, `{"assistant_id":"asst-1"}`)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, body)
	assert.Contains(t, body["error"], `user demo: the signed-in user has no usable private key named "bootstrap"`)

	require.NoError(t, bootstrapKeys(t.Context(), m, []string{"demo"}, io.Discard))
	page, err := m.List(t.Context(), "demo", apikeys.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Keys, 1)
	disabled := true
	_, err = m.Update(t.Context(), "demo", page.Keys[0].ID, apikeys.UpdateParams{Disabled: &disabled})
	require.NoError(t, err)
	res, body = mintDemoToken(t, srv.URL, srv.URL, `{"assistant_id":"asst-1"}`)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, body)

	disabled = false
	_, err = m.Update(t.Context(), "demo", page.Keys[0].ID, apikeys.UpdateParams{Disabled: &disabled})
	require.NoError(t, err)
	res, body = mintDemoToken(t, srv.URL, srv.URL, `{"assistant_id":"asst-1"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	res, body = callWith(t, srv.URL, "Authorization", body["token"].(string), srv.URL, "asst-1")
	assert.Equal(t, http.StatusCreated, res.StatusCode, body)
}

func mustTokenKeys(t testing.TB, spec string) []apikeys.TokenKey {
	t.Helper()
	keys, _, err := tokenKeys(spec)
	require.NoError(t, err)
	return keys
}

// seed returns a new -token-key value.
func seed(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func TestTokenKeys(t *testing.T) {
	t.Parallel()
	s1, s2 := seed(t), seed(t)
	a, generated, err := tokenKeys(s1)
	require.NoError(t, err)
	assert.False(t, generated)
	b, _, err := tokenKeys(" " + s2 + " , " + strings.TrimRight(s1, "=") + " ")
	require.NoError(t, err)
	require.Len(t, b, 2)
	assert.NotNil(t, b[0].PrivateKey, "the first signs")
	assert.Nil(t, b[1].PrivateKey, "the others only verify")
	assert.Equal(t, a[0].ID, b[1].ID, "the same seed, the same kid")
	assert.Equal(t, a[0].PublicKey, b[1].PublicKey)
	assert.NotEqual(t, b[0].ID, b[1].ID)

	g, generated, err := tokenKeys("")
	require.NoError(t, err)
	assert.True(t, generated)
	require.Len(t, g, 1)
	assert.NotNil(t, g[0].PrivateKey)

	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for _, bad := range []string{"not base64!", short, s1 + ",", s1 + "," + short} {
		_, _, err := tokenKeys(bad)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), s1, "an error shows no seed")
		assert.NotContains(t, err.Error(), short, "an error shows no seed")
	}
	_, _, err = startRun(t, "-addr", "127.0.0.1:0", "-token-key", short)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-token-key")
}

// TestTokenKeyShared: instances on one store verify each other's tokens
// when they share -token-key (also as a previous key, in a rotation), and
// not when each generated its own, which the server warns about.
func TestTokenKeyShared(t *testing.T) {
	t.Parallel()
	spec := persistentStore(t)
	s1, s2 := seed(t), seed(t)
	a, outA := runDemo(t, "-store", spec, "-token-key", s1, "-bootstrap", "demo")
	assert.NotContains(t, outA.String(), "warning")
	same, _ := runDemo(t, "-store", spec, "-token-key", s1, "-bootstrap", "")
	rotated, _ := runDemo(t, "-store", spec, "-token-key", s2+","+s1, "-bootstrap", "demo")
	own, outOwn := runDemo(t, "-store", spec, "-bootstrap", "")
	assert.Contains(t, outOwn.String(), "warning: no -token-key or APIKEYS_TOKEN_KEY")
	assert.Contains(t, outOwn.String(), "tokens minted by one instance won't verify on another")

	res, body := mintDemoToken(t, a, a, `{"assistant_id":"asst-1"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	tok := body["token"].(string)
	for _, tt := range []struct {
		name, base string
		status     int
	}{
		{"the minting instance", a, 201},
		{"another with the same key", same, 201},
		{"another that signs with a new key and keeps the old", rotated, 201},
		{"another with a key of its own", own, 401},
	} {
		// The token is for a's page, whichever instance serves the call.
		res, body := callWith(t, tt.base, "Authorization", tok, a, "asst-1")
		assert.Equal(t, tt.status, res.StatusCode, "%s: %v", tt.name, body)
	}
	// A token the rotated instance signs with its new key: the instances
	// still on the old one cannot verify it (they would be given both).
	res, body = mintDemoToken(t, rotated, rotated, `{"assistant_id":"asst-1"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	newTok := body["token"].(string)
	res, body = callWith(t, rotated, "Authorization", newTok, rotated, "asst-1")
	assert.Equal(t, http.StatusCreated, res.StatusCode, body)
	res, body = callWith(t, same, "Authorization", newTok, rotated, "asst-1")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
}

// TestTokenKeyEnv: APIKEYS_TOKEN_KEY gives the key when -token-key does
// not (not parallel: it sets the environment).
func TestTokenKeyEnv(t *testing.T) {
	spec := persistentStore(t)
	t.Setenv(tokenKeyEnv, seed(t))
	a, outA := runDemo(t, "-store", spec, "-bootstrap", "demo")
	b, outB := runDemo(t, "-store", spec, "-bootstrap", "")
	for _, out := range []string{outA.String(), outB.String()} {
		assert.NotContains(t, out, "warning")
	}
	res, body := mintDemoToken(t, a, a, `{"assistant_id":"asst-1"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	res, body = callWith(t, b, "Authorization", body["token"].(string), a, "asst-1")
	assert.Equal(t, http.StatusCreated, res.StatusCode, body)
	_, _, err := startRun(t, "-addr", "127.0.0.1:0", "-token-key", "bad")
	require.Error(t, err, "a bad -token-key is refused even with the variable set")
}

// TestBootstrapUserNames: every -bootstrap user gets a key, and one the
// demo's sign-in will not take is told so, rather than silently missing
// from the sign-in page.
func TestBootstrapUserNames(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	var out strings.Builder
	require.NoError(t, bootstrapKeys(t.Context(), m, []string{"Alice", "bob"}, &out))
	assert.Contains(t, out.String(), "note: user Alice cannot sign in to the demo's pages")
	assert.NotContains(t, out.String(), "note: user bob")
	for _, user := range []string{"Alice", "bob"} {
		assert.Contains(t, out.String(), "bootstrap private key for "+user+": ak_sk_")
	}
}
