package keyspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/keyspage"
	"github.com/keyward/apikeys/memstore"
)

const prefix = "/settings/api-keys"

// sessionUser is the test's session: the user named by the "user" cookie.
func sessionUser(r *http.Request) (httpapi.Owner, error) {
	c, err := r.Cookie("user")
	if err != nil || c.Value == "" {
		return httpapi.Owner{}, errors.New("not signed in")
	}
	return httpapi.Owner{UserID: c.Value, UserEmail: c.Value + "@example.com"}, nil
}

func newPage(t *testing.T, cfg *keyspage.Config) (*apikeys.Manager, http.Handler) {
	t.Helper()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	c := keyspage.Config{Prefix: prefix, Owner: sessionUser}
	if cfg != nil {
		c = *cfg
	}
	h, err := keyspage.New(m, &c)
	require.NoError(t, err)
	return m, h
}

// do sends a request as user ("" for none) from the page's own origin,
// with the headers a browser adds, and extra headers set after those.
func do(t *testing.T, h http.Handler, method, target, user, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://keys.example.com"+target, rd)
	if user != "" {
		r.AddCookie(&http.Cookie{Name: "user", Value: user})
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	for name, cfg := range map[string]*keyspage.Config{
		"nil config":              nil,
		"no owner":                {Prefix: prefix},
		"relative prefix":         {Prefix: "keys", Owner: sessionUser},
		"trailing slash":          {Prefix: "/keys/", Owner: sessionUser},
		"unclean prefix":          {Prefix: "/a/../keys", Owner: sessionUser},
		"pattern in prefix":       {Prefix: "/{id}", Owner: sessionUser},
		"bad sign-in url":         {Owner: sessionUser, SignInURL: "javascript:alert(1)"},
		"relative sign-in url":    {Owner: sessionUser, SignInURL: "signin"},
		"other-host sign-in path": {Owner: sessionUser, SignInURL: "//evil.example/signin"},
		"backslash sign-in path":  {Owner: sessionUser, SignInURL: "/\\evil.example"},
		"hostless http link":      {Owner: sessionUser, Links: []keyspage.Link{{Label: "x", URL: "http:/home"}}},
		"bad origin":              {Owner: sessionUser, TrustedOrigins: []string{"not an origin"}},
		"negative grace":          {Owner: sessionUser, MaxGracePeriod: -1},
		"script link":             {Owner: sessionUser, Links: []keyspage.Link{{Label: "x", URL: "javascript:alert(1)"}}},
		"relative link":           {Owner: sessionUser, Links: []keyspage.Link{{Label: "x", URL: "home"}}},
		"link without label":      {Owner: sessionUser, Links: []keyspage.Link{{URL: "/"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := keyspage.New(m, cfg)
			assert.Error(t, err)
		})
	}
	_, err = keyspage.New(nil, &keyspage.Config{Owner: sessionUser})
	assert.Error(t, err)
}

func TestPageHeaders(t *testing.T) {
	t.Parallel()
	_, h := newPage(t, nil)
	w := do(t, h, "GET", prefix+"/", "alice", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	hd := w.Header()
	csp := hd.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", "base-uri 'none'"} {
		assert.Contains(t, csp, want)
	}
	assert.NotContains(t, csp, "unsafe-inline")
	assert.NotContains(t, csp, "unsafe-eval")
	assert.Equal(t, "DENY", hd.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", hd.Get("Cache-Control"))
	assert.Equal(t, "text/html; charset=utf-8", hd.Get("Content-Type"))
	body := w.Body.String()
	assert.Contains(t, body, `data-api="`+prefix+`/api/api_keys"`)
	assert.Contains(t, body, "alice@example.com")

	// The API's answers forbid framing too, and are never cached.
	w = do(t, h, "GET", prefix+"/api/api_keys", "alice", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "DENY", w.Header().Get("X-Frame-Options"))
}

// TestPageHasNoInlineCode parses the page: every script and stylesheet is
// a file of its own, no element has an event handler or a style attribute,
// and nothing points off the page's origin.
func TestPageHasNoInlineCode(t *testing.T) {
	t.Parallel()
	_, h := newPage(t, nil)
	w := do(t, h, "GET", prefix+"/", "alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	doc, err := html.Parse(w.Body)
	require.NoError(t, err)
	var scripts, styles int
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		attrs := map[string]string{}
		for _, a := range n.Attr {
			attrs[a.Key] = a.Val
			assert.False(t, strings.HasPrefix(a.Key, "on"), "event handler attribute %s on <%s>", a.Key, n.Data)
			assert.NotEqual(t, "style", a.Key, "style attribute on <%s>", n.Data)
			if a.Key == "src" || a.Key == "href" {
				assert.True(t, strings.HasPrefix(a.Val, prefix+"/"), "<%s %s=%q> leaves the page", n.Data, a.Key, a.Val)
			}
		}
		switch n.Data {
		case "script":
			scripts++
			assert.NotEmpty(t, attrs["src"], "inline script")
			assert.Nil(t, n.FirstChild, "inline script")
		case "style":
			t.Errorf("inline <style>")
		case "link":
			if attrs["rel"] == "stylesheet" {
				styles++
			}
		}
	}
	assert.Equal(t, 1, scripts)
	assert.Equal(t, 1, styles)
}

// TestPageMaxGrace: the page offers grace periods up to the handler's.
func TestPageMaxGrace(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		grace time.Duration
		want  string
	}{{0, "2592000"}, {time.Hour, "3600"}} {
		_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: sessionUser, MaxGracePeriod: tt.grace})
		w := do(t, h, "GET", prefix+"/", "alice", "")
		require.Equal(t, http.StatusOK, w.Code)
		assert.Contains(t, w.Body.String(), `data-max-grace="`+tt.want+`"`, tt.grace)
	}
}

func TestPageEscapesUser(t *testing.T) {
	t.Parallel()
	owner := func(*http.Request) (httpapi.Owner, error) {
		return httpapi.Owner{UserID: "u1", UserEmail: `<img src=x onerror=alert(1)>"`}, nil
	}
	_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: owner, Title: "<b>Keys</b>"})
	w := do(t, h, "GET", prefix+"/", "", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.NotContains(t, w.Body.String(), "<img")
	assert.NotContains(t, w.Body.String(), "<b>")
	assert.Contains(t, w.Body.String(), "&lt;img src=x onerror=alert(1)&gt;&#34;")
}

func TestNotSignedIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, signIn, target string
		code                 int
		location             string
	}{
		{"page without sign-in url", "", prefix + "/", http.StatusUnauthorized, ""},
		{"page with sign-in url", "/signin?from=keys", prefix + "/", http.StatusSeeOther, "/signin?from=keys&next=%2Fsettings%2Fapi-keys%2F"},
		{"api", "/signin", prefix + "/api/api_keys", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: sessionUser, SignInURL: tt.signIn})
			w := do(t, h, "GET", tt.target, "", "")
			assert.Equal(t, tt.code, w.Code, w.Body.String())
			assert.Equal(t, tt.location, w.Header().Get("Location"))
			assert.NotContains(t, w.Body.String(), "data-api")
		})
	}
}

// TestCrossSiteRequestsRefused is the CSRF defence: a state-changing
// request a browser marks as coming from another site is refused, and
// changes nothing, while the same request from the page's origin works.
func TestCrossSiteRequestsRefused(t *testing.T) {
	t.Parallel()
	m, h := newPage(t, nil)
	ctx := context.Background()
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice"})
	require.NoError(t, err)
	create := `{"api_key":{"name":"evil","key_type":"private"}}`
	tests := []struct {
		name, method, target, body string
		header                     []string
	}{
		{"create, cross-site", "POST", prefix + "/api/api_keys", create, []string{"Sec-Fetch-Site", "cross-site"}},
		{"create, same-site other origin", "POST", prefix + "/api/api_keys", create, []string{"Sec-Fetch-Site", "same-site"}},
		{"create, form post", "POST", prefix + "/api/api_keys", create, []string{"Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}},
		{"create, old browser with foreign Origin", "POST", prefix + "/api/api_keys", create, []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
		{"update", "PUT", prefix + "/api/api_keys/" + nk.ID.String(), `{"api_key":{"enabled":false}}`, []string{"Sec-Fetch-Site", "cross-site"}},
		{"rotate", "POST", prefix + "/api/api_keys/" + nk.ID.String() + "/rotate", `{}`, []string{"Sec-Fetch-Site", "cross-site"}},
		{"delete", "DELETE", prefix + "/api/api_keys/" + nk.ID.String(), "", []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, tt.method, tt.target, "alice", tt.body, tt.header...)
			assert.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
			assert.Contains(t, w.Body.String(), "cross-origin request refused")
			assert.Equal(t, "DENY", w.Header().Get("X-Frame-Options"), "the refusal is no frame either")
			assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		})
	}
	page, err := m.List(ctx, "alice", apikeys.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Keys, 1)
	assert.False(t, page.Keys[0].Disabled)
	assert.Equal(t, nk.ID, page.Keys[0].ID)

	// The same from the page itself.
	w := do(t, h, "POST", prefix+"/api/api_keys", "alice", create)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = do(t, h, "DELETE", prefix+"/api/api_keys/"+nk.ID.String(), "alice", "", "Origin", "http://keys.example.com")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func TestTrustedOrigins(t *testing.T) {
	t.Parallel()
	_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: sessionUser, TrustedOrigins: []string{"https://public.example.com"}})
	create := `{"api_key":{"name":"ok","key_type":"public"}}`
	w := do(t, h, "POST", prefix+"/api/api_keys", "alice", create, "Sec-Fetch-Site", "cross-site", "Origin", "https://public.example.com")
	assert.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = do(t, h, "POST", prefix+"/api/api_keys", "alice", create, "Sec-Fetch-Site", "cross-site", "Origin", "https://other.example.com")
	assert.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
}

// TestSessionOwnsKeys: the API acts for the session's user only; another
// user's key is not found, and a key in the Authorization header changes
// nothing.
func TestSessionOwnsKeys(t *testing.T) {
	t.Parallel()
	m, h := newPage(t, nil)
	ctx := context.Background()
	bobs, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "bob's", UserID: "bob"})
	require.NoError(t, err)
	w := do(t, h, "POST", prefix+"/api/api_keys", "alice", `{"api_key":{"name":"mine","key_type":"public","allowed_origins":["https://app.example.com"]}}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var created struct {
		Data struct {
			KeyValue string `json:"key_value"`
			UserID   string `json:"user_id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	assert.Equal(t, "alice", created.Data.UserID)
	assert.NotEmpty(t, created.Data.KeyValue)

	for _, method := range []string{"GET", "DELETE"} {
		w = do(t, h, method, prefix+"/api/api_keys/"+bobs.ID.String(), "alice", "", "Authorization", "Bearer "+bobs.Value)
		assert.Equal(t, http.StatusNotFound, w.Code, method)
	}
	w = do(t, h, "GET", prefix+"/api/api_keys", "alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.NotContains(t, w.Body.String(), bobs.ID.String())
	_, err = m.Get(ctx, "bob", bobs.ID)
	assert.NoError(t, err)
}

func TestAssets(t *testing.T) {
	t.Parallel()
	_, h := newPage(t, nil)
	for file, ct := range map[string]string{"keys.js": "text/javascript; charset=utf-8", "keys.css": "text/css; charset=utf-8"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			// Assets need no session: they hold nothing of a user's.
			w := do(t, h, "GET", prefix+"/assets/"+file, "", "")
			require.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, ct, w.Header().Get("Content-Type"))
			assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
			etag := w.Header().Get("ETag")
			require.NotEmpty(t, etag)
			assert.NotZero(t, w.Body.Len())
			w = do(t, h, "GET", prefix+"/assets/"+file, "", "", "If-None-Match", etag)
			assert.Equal(t, http.StatusNotModified, w.Code)
		})
	}
	for _, target := range []string{prefix + "/assets/index.html", prefix + "/assets/nope.js", prefix + "/assets/../keyspage.go", "/elsewhere"} {
		w := do(t, h, "GET", target, "alice", "")
		assert.Contains(t, []int{http.StatusNotFound, http.StatusTemporaryRedirect}, w.Code, target)
		assert.NotContains(t, w.Body.String(), "package keyspage")
	}
	w := do(t, h, "GET", prefix, "alice", "")
	assert.Equal(t, http.StatusMovedPermanently, w.Code)
	assert.Equal(t, prefix+"/", w.Header().Get("Location"))
}

func TestPageLinks(t *testing.T) {
	t.Parallel()
	links := []keyspage.Link{{Label: "Home", URL: "/"}, {Label: "Docs & help", URL: "https://docs.example.com/keys?a=1&b=2"}}
	_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: sessionUser, Links: links})
	w := do(t, h, "GET", prefix+"/", "alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	doc, err := html.Parse(w.Body)
	require.NoError(t, err)
	var got []keyspage.Link
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "a" && n.Parent != nil && n.Parent.Data == "nav" {
			got = append(got, keyspage.Link{Label: n.FirstChild.Data, URL: n.Attr[0].Val})
		}
	}
	assert.Equal(t, links, got)
}
