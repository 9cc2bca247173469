package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// siteDemo returns the demo's handler, as run mounts it with -bootstrap
// alice,bob, and its Manager.
func siteDemo(t *testing.T) (http.Handler, *apikeys.Manager) {
	t.Helper()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"alice", "bob", "Not Valid"})
	require.NoError(t, err)
	return h, m
}

// serve sends r to h and returns the answer with its body read.
func serve(t *testing.T, h http.Handler, r *http.Request) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// signInRequest is the sign-in form's POST, as a same-origin browser sends it.
func signInRequest(user, next string) *http.Request {
	form := url.Values{"user": {user}, "next": {next}}
	r := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// signIn signs user in and returns the session cookie.
func signIn(t *testing.T, h http.Handler, user string) *http.Cookie {
	t.Helper()
	res, body := serve(t, h, signInRequest(user, "/"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	c := sessionFrom(res)
	require.NotNil(t, c, "sign-in set no session cookie")
	return c
}

// sessionFrom returns the session cookie res sets, or nil.
func sessionFrom(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

func get(path string, c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func TestSignInRedirectsOnlyToLocalPaths(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	for _, tt := range []struct{ next, want string }{
		{"/settings/api-keys/", "/settings/api-keys/"},
		{"/webcall?assistant=x", "/webcall?assistant=x"},
		{"/", "/"},
		{"", "/"},
		{"//evil.com", "/"},
		{"//evil.com/settings/api-keys/", "/"},
		{`/\evil.com`, "/"},
		{"https://evil.com", "/"},
		{"https://evil.com/settings/api-keys/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.com", "/"},
		{"/\t/evil.com", "/"},
	} {
		t.Run(tt.next, func(t *testing.T) {
			t.Parallel()
			res, body := serve(t, h, signInRequest("alice", tt.next))
			require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
			assert.Equal(t, tt.want, res.Header.Get("Location"))
			c := sessionFrom(res)
			require.NotNil(t, c)
			assert.True(t, strings.HasPrefix(c.Value, "alice."), c.Value)
			assert.True(t, c.HttpOnly, "HttpOnly")
			assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
			assert.Equal(t, "/", c.Path)
			assert.False(t, c.Secure, "plain HTTP: a Secure cookie would not come back")
		})
	}
}

func TestSignInCookieSecureOverTLS(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	r := signInRequest("alice", "/")
	r.URL.Scheme, r.Host = "https", "demo.example"
	r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	res, body := serve(t, h, r)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	c := sessionFrom(res)
	require.NotNil(t, c)
	assert.True(t, c.Secure)
}

// signedIn reports whether the keys page takes the request's cookie for a
// session (200), or sends the visitor to sign in (303).
func signedIn(t *testing.T, h http.Handler, c *http.Cookie) bool {
	t.Helper()
	res, body := serve(t, h, get("/settings/api-keys/", c))
	switch res.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusSeeOther:
		return false
	}
	t.Fatalf("keys page: %d %s", res.StatusCode, body)
	return false
}

func TestTamperedSessionIsNotSignedIn(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	other, _ := siteDemo(t) // another process: another secret
	alice := signIn(t, h, "alice")
	user, rest, ok := strings.Cut(alice.Value, ".")
	require.True(t, ok)
	require.Equal(t, "alice", user)
	exp, mac, ok := strings.Cut(rest, ".")
	require.True(t, ok)
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	for _, tt := range []struct {
		name, value string
		want        bool
	}{
		{"as issued", alice.Value, true},
		{"other user, same MAC", "bob." + exp + "." + mac, false},
		{"user with a suffix", "alice2." + exp + "." + mac, false},
		{"bad MAC", "alice." + exp + "." + flip(mac), false},
		{"no MAC", "alice." + exp + ".", false},
		{"MAC dropped", "alice." + exp, false},
		{"user only", "alice", false},
		{"later expiry", "alice." + exp + "9." + mac, false},
		{"empty", "", false},
		{"other process's cookie", signIn(t, other, "alice").Value, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &http.Cookie{Name: sessionCookie, Value: tt.value}
			assert.Equal(t, tt.want, signedIn(t, h, c))
			_, body := serve(t, h, get("/", c))
			assert.Equal(t, tt.want, strings.Contains(body, `id="signed-in-user">alice<`), "the landing page shows alice signed in")
		})
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	s, err := newSessions()
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(s.cookie(r, "alice"))
	for _, tt := range []struct {
		after time.Duration
		want  string
	}{
		{0, "alice"},
		{sessionTTL - time.Second, "alice"},
		{sessionTTL, ""},
		{sessionTTL + time.Hour, ""},
	} {
		s.now = func() time.Time { return now.Add(tt.after) }
		assert.Equal(t, tt.want, s.user(r), "after %v", tt.after)
	}
}

func TestSignInOutRefusedCrossSite(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	alice := signIn(t, h, "alice")
	for _, tt := range []struct {
		name, path, site, origin string
		want                     int
	}{
		{"sign-in, cross-site", "/signin", "cross-site", "", http.StatusForbidden},
		{"sign-in, same-site other origin", "/signin", "same-site", "", http.StatusForbidden},
		{"sign-in, Origin of another host", "/signin", "", "https://evil.com", http.StatusForbidden},
		{"sign-in, same-origin", "/signin", "same-origin", "", http.StatusSeeOther},
		{"sign-in, own Origin", "/signin", "", "http://example.com", http.StatusSeeOther},
		{"sign-out, cross-site", "/signout", "cross-site", "", http.StatusForbidden},
		{"sign-out, same-origin", "/signout", "same-origin", "", http.StatusSeeOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := signInRequest("bob", "/")
			r.URL.Path = tt.path
			r.Header.Del("Sec-Fetch-Site")
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			r.AddCookie(alice)
			res, body := serve(t, h, r)
			assert.Equal(t, tt.want, res.StatusCode, body)
			if tt.want == http.StatusForbidden {
				assert.Nil(t, sessionFrom(res), "a refused request changes no session")
				assert.Contains(t, body, "another site")
			}
		})
	}
}

func TestKeysPageSession(t *testing.T) {
	t.Parallel()
	h, m := siteDemo(t)

	res, body := serve(t, h, get("/settings/api-keys/", nil))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	assert.Equal(t, "/signin?next=%2Fsettings%2Fapi-keys%2F", res.Header.Get("Location"))
	// The sign-in page it sends to carries next on.
	_, body = serve(t, h, get(res.Header.Get("Location"), nil))
	assert.Contains(t, body, `name="next" value="/settings/api-keys/"`)

	ids := map[string][]string{}
	for _, k := range []struct{ user, name string }{{"alice", "a1"}, {"alice", "a2"}, {"bob", "b1"}} {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: k.name, UserID: k.user, AllowedOrigins: []string{"https://shop.example"}})
		require.NoError(t, err)
		ids[k.user] = append(ids[k.user], nk.Key.ID.String())
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			c := signIn(t, h, user)
			res, body := serve(t, h, get("/settings/api-keys/", c))
			require.Equal(t, http.StatusOK, res.StatusCode, body)
			assert.Contains(t, body, user+"@demo.example")

			res, body = serve(t, h, get("/settings/api-keys/api/api_keys", c))
			require.Equal(t, http.StatusOK, res.StatusCode, body)
			var list struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &list), body)
			got := []string{}
			for _, k := range list.Data {
				got = append(got, k.ID)
			}
			want := ids[user]
			if want == nil {
				want = []string{}
			}
			assert.ElementsMatch(t, want, got, "the session's user's keys, only")
		})
	}
	res, body = serve(t, h, get("/settings/api-keys/api/api_keys", nil))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "the API without a session: %s", body)
}

func TestSignOutClearsSession(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	c := signIn(t, h, "alice")
	require.True(t, signedIn(t, h, c))
	r := httptest.NewRequest(http.MethodPost, "/signout", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(c)
	res, body := serve(t, h, r)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	assert.Equal(t, "/", res.Header.Get("Location"))
	cleared := sessionFrom(res)
	require.NotNil(t, cleared, "sign-out sets the cookie")
	assert.Empty(t, cleared.Value)
	assert.Negative(t, cleared.MaxAge, "the browser deletes it")
	assert.Equal(t, "/", cleared.Path)
	assert.True(t, cleared.HttpOnly)
	// A browser then sends no cookie: the landing page offers to sign in.
	_, body = serve(t, h, get("/", nil))
	assert.Contains(t, body, `id="signin-link"`)
	assert.NotContains(t, body, `id="signed-in-user"`)
}

func TestSignInUserNames(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	for _, tt := range []struct {
		user string
		ok   bool
	}{
		{"alice", true},
		{"a", true},
		{"a.b_c-d9", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"Alice", false},
		{"a b", false},
		{"al/ice", false},
		{"<script>", false},
		{"ali\u00e7e", false},
		{"alice\n", false},
	} {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			res, body := serve(t, h, signInRequest(tt.user, "/webcall"))
			if tt.ok {
				assert.Equal(t, http.StatusSeeOther, res.StatusCode, body)
				assert.NotNil(t, sessionFrom(res))
				return
			}
			assert.Equal(t, http.StatusBadRequest, res.StatusCode)
			assert.Nil(t, sessionFrom(res), "no session for an invalid name")
			assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Contains(t, body, "1 to 64 characters: lowercase letters a-z, digits 0-9")
			assert.Contains(t, body, `id="signin-error"`)
			assert.Contains(t, body, `name="next" value="/webcall"`, "the form keeps next")
			assert.NotContains(t, body, "<script>", "the name typed is escaped")
		})
	}
}

func TestSignInPageListsUsers(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	res, body := serve(t, h, get("/signin?next=//evil.com", nil))
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `name="user" value="alice"`)
	assert.Contains(t, body, `name="user" value="bob"`)
	assert.NotContains(t, body, "Not Valid", "a bootstrap user who cannot sign in is not offered")
	assert.Contains(t, body, `name="next" value="/"`, "next is checked on the page too")
	assert.NotContains(t, body, "evil.com")
}

func TestPagesShowSession(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	c := signIn(t, h, "alice")
	for _, tt := range []struct {
		path          string
		c             *http.Cookie
		want, wantNot []string
	}{
		{"/", nil, []string{`id="go-signin"`, `id="signin-link"`, "http://example.com"}, []string{`id="go-keys"`, `id="signout"`}},
		{"/", c, []string{`id="go-keys"`, `id="signed-in-user">alice<`, `action="/signout"`}, []string{`id="go-signin"`, `id="signin-link"`}},
		{"/webcall", nil, []string{`id="assistant"`, `id="get-token"`, `id="token-info"`, `id="token"`, `id="base"`, `id="go"`, `id="out"`, `id="key"`, `id="signin-link"`},
			[]string{`id="origin-note"`}},
		{"/webcall", c, []string{`id="origin-note"`, "must allow this page's origin", `<code class="page-origin">http://example.com</code>`, `id="signed-in-user">alice<`},
			[]string{`id="signin-link"`}},
	} {
		_, body := serve(t, h, get(tt.path, tt.c))
		for _, s := range tt.want {
			assert.Contains(t, body, s, "%s (signed in: %v)", tt.path, tt.c != nil)
		}
		for _, s := range tt.wantNot {
			assert.NotContains(t, body, s, "%s (signed in: %v)", tt.path, tt.c != nil)
		}
	}
}

// inlineCode returns the inline script or style in a page: a script
// element without src or with content, a style element or attribute, an
// event handler attribute, or a javascript: URL.
func inlineCode(html string) []string {
	var found []string
	scripts := regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script`)
	for _, m := range scripts.FindAllStringSubmatch(html, -1) {
		if !regexp.MustCompile(`(?i)\ssrc\s*=`).MatchString(m[1]) || strings.TrimSpace(m[2]) != "" {
			found = append(found, m[0])
		}
	}
	return append(found, regexp.MustCompile(`(?i)<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:`).FindAllString(html, -1)...)
}

func TestInlineCodeDetector(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		html   string
		inline bool
	}{
		{`<script src="/assets/webcall.js"></script>`, false},
		{`<script src="/x.js" defer></script>`, false},
		{`<link rel="stylesheet" href="/assets/app.css">`, false},
		{`<script>alert(1)</script>`, true},
		{`<script defer>alert(1)</script>`, true},
		{`<script src="/x.js">alert(1)</script>`, true},
		{`<SCRIPT type="module">x</SCRIPT>`, true},
		{`<style>body{}</style>`, true},
		{`<p style="color:red">`, true},
		{`<button onclick="x()">`, true},
		{`<a href="javascript:x()">`, true},
	} {
		assert.Equal(t, tt.inline, len(inlineCode(tt.html)) > 0, tt.html)
	}
}

func TestEveryPageStrictCSP(t *testing.T) {
	t.Parallel()
	h, _ := siteDemo(t)
	c := signIn(t, h, "alice")
	crossSite := signInRequest("alice", "/")
	crossSite.Header.Set("Sec-Fetch-Site", "cross-site")
	for _, tt := range []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"landing", get("/", nil), 200},
		{"landing, signed in", get("/", c), 200},
		{"sign-in", get("/signin", nil), 200},
		{"sign-in, next", get("/signin?next=/settings/api-keys/", c), 200},
		{"web call", get("/webcall", nil), 200},
		{"web call, signed in", get("/webcall", c), 200},
		{"bad user name", signInRequest("Bad Name", "/"), 400},
		{"cross-site sign-in", crossSite, 403},
		{"keys page", get("/settings/api-keys/", c), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, body := serve(t, h, tt.r)
			require.Equal(t, tt.status, res.StatusCode, body)
			assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			csp := res.Header.Get("Content-Security-Policy")
			require.NotEmpty(t, csp)
			assert.NotContains(t, csp, "unsafe-inline")
			assert.NotContains(t, csp, "unsafe-eval")
			assert.Contains(t, csp, "script-src 'self'")
			assert.Contains(t, csp, "style-src 'self'")
			assert.Contains(t, csp, "base-uri 'none'")
			assert.Regexp(t, `frame-ancestors '(none|self)'`, csp)
			assert.Empty(t, inlineCode(body), "inline code in the page")
			if tt.name != "keys page" { // keyspage has a look of its own
				assert.Contains(t, body, `<link rel="stylesheet" href="/assets/app.css">`)
				assert.Contains(t, body, `href="/settings/api-keys/">API keys</a>`)
				assert.Contains(t, body, `href="/webcall"`)
			}
		})
	}
	for _, tt := range []struct{ path, ctype string }{
		{"/assets/app.css", "text/css; charset=utf-8"},
		{"/assets/webcall.js", "text/javascript; charset=utf-8"},
	} {
		res, body := serve(t, h, get(tt.path, nil))
		require.Equal(t, http.StatusOK, res.StatusCode, tt.path)
		assert.Equal(t, tt.ctype, res.Header.Get("Content-Type"), tt.path)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), tt.path)
		assert.NotEmpty(t, body, tt.path)
	}
	res, _ := serve(t, h, get("/assets/layout.html", nil))
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "templates are not assets")
	// The icon every browser asks for: no content, not a 404 (which
	// browsers log as a console error on every page).
	res, body := serve(t, h, get("/favicon.ico", nil))
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.Empty(t, body)
}
