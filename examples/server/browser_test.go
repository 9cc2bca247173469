package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// findBrowser returns a headless-capable Chromium, or skips the test
// outside CI; in CI (.ci/run installs chromium) a missing browser fails.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("APIKEYS_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found; .ci/run installs the Debian package chromium")
	}
	t.Skip("no Chromium found (install the Debian package chromium, or set APIKEYS_TEST_CHROMIUM); skipping the real-browser CORS test")
	return ""
}

// openInBrowser opens url in a headless Chromium until ctx is done (or
// the test ends); the browser's output goes to out.
func openInBrowser(t *testing.T, ctx context.Context, browser, url string, out io.Writer) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	// Headless Chromium opens one page per process.
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--user-data-dir="+t.TempDir(), url)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
}

// The page each origin serves: it calls the API cross-origin three ways and
// posts what happened back to its own origin.
const browserPage = `<!doctype html><meta charset="utf-8"><script>
(async () => {
  const api = %q, key = %q;
  const call = async (name, headers, body) => {
    try {
      const res = await fetch(api + '/call/web', {method: 'POST', headers, body: JSON.stringify(body)});
      return {name, status: res.status, body: await res.text()};
    } catch (e) {
      return {name, blocked: String(e)};
    }
  };
  const results = [
    await call('bearer', {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'}, {assistant_id: 'asst-1'}),
    await call('x-api-key', {'X-API-Key': key, 'Content-Type': 'application/json'}, {assistant_id: 'asst-1'}),
    await call('other-assistant', {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'}, {assistant_id: 'asst-2'}),
  ];
  await fetch('/report', {method: 'POST', body: JSON.stringify({origin: location.origin, results})});
})();
</script>`

type browserResult struct {
	Name    string `json:"name"`
	Status  int    `json:"status"`
	Body    string `json:"body"`
	Blocked string `json:"blocked"`
}

type browserReport struct {
	Origin  string          `json:"origin"`
	Results []browserResult `json:"results"`
}

// TestBrowserCORS loads pages from two loopback origins in headless
// Chromium; each calls the demo API, on a third origin, with a public key
// that allows only the first. The browser itself must let the first read
// the answers and block the second.
func TestBrowserCORS(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	var preflights atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			preflights.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)

	reports := make(chan browserReport, 2)
	var key atomic.Pointer[string] // set once the allowed page's origin is known
	pageServer := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/":
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, browserPage, api.URL, *key.Load())
			case "/report":
				var rep browserReport
				if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
					t.Errorf("bad report: %v", err)
				}
				reports <- rep
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	allowed, refused := pageServer(), pageServer()
	// Same host, other ports: distinct origins. The refused page is reached
	// as "localhost" so that its origin differs in host too.
	refusedURL := strings.Replace(refused.URL, "127.0.0.1", "localhost", 1)

	nk, err := m.Create(t.Context(), apikeys.CreateParams{
		Type: apikeys.Public, Name: "browser", UserID: "demo",
		AllowedOrigins: []string{allowed.URL}, AllowedAssistants: []string{"asst-1"},
	})
	require.NoError(t, err)
	key.Store(&nk.Value)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	for _, page := range []string{allowed.URL + "/", refusedURL + "/"} {
		openInBrowser(t, ctx, browser, page, &stderr)
	}

	got := map[string]browserReport{}
	for len(got) < 2 {
		select {
		case rep := <-reports:
			got[rep.Origin] = rep
		case <-ctx.Done():
			t.Fatalf("the browser reported %d of 2 pages before the deadline; chromium said:\n%s", len(got), stderr.String())
		}
	}

	ok := got[allowed.URL]
	require.Len(t, ok.Results, 3, "report from %s: %+v (all: %+v)", allowed.URL, ok, got)
	for _, r := range ok.Results[:2] {
		assert.Empty(t, r.Blocked, r.Name)
		assert.Equal(t, http.StatusCreated, r.Status, "%s: %s", r.Name, r.Body)
		assert.Contains(t, r.Body, `"assistant_id":"asst-1"`, r.Name)
	}
	// A refusal for another reason than the origin is readable by a page
	// on an origin the key allows.
	other := ok.Results[2]
	assert.Empty(t, other.Blocked, "refusal for an allowed origin")
	assert.Equal(t, http.StatusForbidden, other.Status)
	assert.Contains(t, other.Body, "allowed_assistants")

	bad := got[refusedURL]
	require.Len(t, bad.Results, 3, "report from %s: %+v", refusedURL, bad)
	for _, r := range bad.Results {
		assert.NotEmpty(t, r.Blocked, "%s from a refused origin was readable: %d %s", r.Name, r.Status, r.Body)
		assert.Zero(t, r.Status, r.Name)
	}
	assert.Positive(t, preflights.Load(), "the browser sent preflights")
}

// cspProbe is a page on the demo's own origin, outside its CSP, that loads
// the demo page in a frame and reports how it rendered: whether each of its
// stylesheets loaded (a sheet blocked by the CSP has none), the styles
// they give, and whether its script ran (it fills the API base input).
const cspProbe = `<!doctype html><meta charset="utf-8">
<iframe id="demo" src="/webcall" width="1000" height="800"></iframe>
<script>
document.getElementById('demo').onload = async () => {
  const f = document.getElementById('demo'), d = f.contentDocument, w = f.contentWindow;
  const body = w.getComputedStyle(d.body), pre = w.getComputedStyle(d.querySelector('pre'));
  const report = {
    sheets: [...d.querySelectorAll('style, link[rel=stylesheet]')].map(e => ({tag: e.tagName, href: e.href || '', loaded: !!e.sheet})),
    maxWidth: body.maxWidth,
    preBackground: pre.backgroundColor,
    base: d.getElementById('base').value,
    origin: location.origin,
  };
  await fetch('/report', {method: 'POST', body: JSON.stringify(report)});
};
</script>`

type cspReport struct {
	Sheets []struct {
		Tag    string `json:"tag"`
		Href   string `json:"href"`
		Loaded bool   `json:"loaded"`
	} `json:"sheets"`
	MaxWidth      string `json:"maxWidth"`
	PreBackground string `json:"preBackground"`
	Base          string `json:"base"`
	Origin        string `json:"origin"`
}

// TestBrowserPageCSP loads the demo page in headless Chromium, under its
// own Content-Security-Policy, and checks that the policy lets the page's
// stylesheet apply and its script run (regression: the policy blocked the
// page's inline style, and the page rendered unstyled).
func TestBrowserPageCSP(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	srv, reports, _ := probedDemo[cspReport](t, h, func() string { return cspProbe })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	openInBrowser(t, ctx, browser, srv.URL+"/probe", &stderr)
	rep := awaitReport(t, ctx, reports, &stderr)
	t.Logf("the demo page as rendered: %+v", rep)
	require.NotEmpty(t, rep.Sheets, "the page has a stylesheet")
	for _, sh := range rep.Sheets {
		assert.Truef(t, sh.Loaded, "%s %s was blocked (by the page's Content-Security-Policy: %s)", sh.Tag, sh.Href, webcallCSP)
	}
	assert.Equal(t, "736px", rep.MaxWidth, "body max-width: 46rem, from the stylesheet")
	assert.Equal(t, "rgb(244, 244, 244)", rep.PreBackground, "pre background #f4f4f4, from the stylesheet")
	assert.Equal(t, rep.Origin, rep.Base, "the page's script ran and filled in the API base")
}

// reportingOrigin serves html() at / and passes what the page POSTs to
// /report to reports: a page on an origin of its own.
func reportingOrigin[T any](t *testing.T, html func() string, reports chan<- T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, html())
		case "/report":
			var rep T
			if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
				t.Errorf("bad report: %v", err)
			}
			reports <- rep
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// limitPage calls the API with a key until it answers 429, at most 5 times,
// and reports what the page's script could read of each answer: the
// status, the body and the headers a widget needs to back off (and Vary,
// which the API does not expose, as a control).
const limitPage = `<!doctype html><meta charset="utf-8"><script>
(async () => {
  const api = %q, key = %q;
  const results = [];
  for (let i = 0; i < 5; i++) {
    try {
      const res = await fetch(api + '/call/web', {
        method: 'POST',
        headers: {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'},
        body: JSON.stringify({assistant_id: 'asst-1'}),
      });
      const h = (name) => res.headers.get(name);
      results.push({status: res.status, body: await res.text(), retryAfter: h('Retry-After'),
        rateLimit: h('RateLimit'), rateLimitPolicy: h('RateLimit-Policy'), vary: h('Vary')});
      if (res.status === 429) break;
    } catch (e) {
      results.push({blocked: String(e)});
    }
  }
  await fetch('/report', {method: 'POST', body: JSON.stringify({origin: location.origin, results})});
})();
</script>`

type limitResult struct {
	Status          int     `json:"status"`
	Body            string  `json:"body"`
	RetryAfter      *string `json:"retryAfter"` // nil: the script read null
	RateLimit       *string `json:"rateLimit"`
	RateLimitPolicy *string `json:"rateLimitPolicy"`
	Vary            *string `json:"vary"`
	Blocked         string  `json:"blocked"`
}

type limitReport struct {
	Origin  string        `json:"origin"`
	Results []limitResult `json:"results"`
}

// TestBrowserRateLimit: in headless Chromium, a page on an origin a
// limited public key allows calls the demo API (another origin) until it
// answers 429, and its script reads the status, Retry-After, RateLimit and
// RateLimit-Policy: the API's Access-Control-Expose-Headers work in a real
// browser. A page on an origin the key does not allow reads nothing at
// all, not even a status.
func TestBrowserRateLimit(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return limitNow }})
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)

	reports := make(chan limitReport, 2)
	var key atomic.Pointer[string] // set once the allowed page's origin is known
	html := func() string { return fmt.Sprintf(limitPage, api.URL, *key.Load()) }
	allowed, refused := reportingOrigin(t, html, reports), reportingOrigin(t, html, reports)
	refusedURL := strings.Replace(refused.URL, "127.0.0.1", "localhost", 1)

	nk, err := m.Create(t.Context(), apikeys.CreateParams{
		Type: apikeys.Public, Name: "widget", UserID: "demo",
		AllowedOrigins: []string{allowed.URL}, AllowedAssistants: []string{"asst-1"},
		RateLimit: &apikeys.RateLimit{Limit: 2, WindowSeconds: 3600},
	})
	require.NoError(t, err)
	key.Store(&nk.Value)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	for _, page := range []string{allowed.URL + "/", refusedURL + "/"} {
		openInBrowser(t, ctx, browser, page, &stderr)
	}
	got := map[string]limitReport{}
	for len(got) < 2 {
		select {
		case rep := <-reports:
			got[rep.Origin] = rep
		case <-ctx.Done():
			t.Fatalf("the browser reported %d of 2 pages before the deadline; chromium said:\n%s", len(got), stderr.String())
		}
	}

	str := func(s string) *string { return &s }
	const policy = `"rate_limit";q=2;w=3600`
	want := []limitResult{
		{Status: 201, RateLimit: str(`"rate_limit";r=1;t=3585`), RateLimitPolicy: str(policy)},
		{Status: 201, RateLimit: str(`"rate_limit";r=0;t=3585`), RateLimitPolicy: str(policy)},
		{Status: 429, RetryAfter: str("3585"), RateLimit: str(`"rate_limit";r=0;t=3585`), RateLimitPolicy: str(policy)},
	}
	ok := got[allowed.URL]
	require.Len(t, ok.Results, len(want), "report from %s: %+v (all: %+v)", allowed.URL, ok, got)
	for i, r := range ok.Results {
		assert.Empty(t, r.Blocked, "call %d", i+1)
		body := r.Body
		r.Body = ""
		assert.Equal(t, want[i], r, "call %d, what the page's script read (body %s)", i+1, body)
	}
	assert.Contains(t, ok.Results[2].Body, `"restriction":"rate_limit"`)
	assert.Contains(t, ok.Results[2].Body, "rate limit exceeded")

	bad := got[refusedURL]
	require.Len(t, bad.Results, 5, "report from %s: %+v", refusedURL, bad)
	for i, r := range bad.Results {
		assert.NotEmpty(t, r.Blocked, "call %d from a refused origin was readable: %+v", i+1, r)
		assert.Equal(t, limitResult{Blocked: r.Blocked}, r, "call %d from a refused origin: nothing read", i+1)
	}
}

// page429Probe is a page on the demo's own origin that loads the demo page
// in a frame, and for each key fills it in and clicks the button twice,
// reporting what the page showed after each click.
const page429Probe = `<!doctype html><meta charset="utf-8">
<iframe id="demo" src="/webcall" width="1000" height="800"></iframe>
<script>
const keys = %s;
document.getElementById('demo').onload = async () => {
  const d = document.getElementById('demo').contentDocument, out = d.getElementById('out');
  // The page sets the output once per answer: the first change is it.
  const click = () => new Promise(resolve => {
    const obs = new MutationObserver(() => { obs.disconnect(); resolve(out.textContent); });
    obs.observe(out, {childList: true, characterData: true, subtree: true});
    d.getElementById('go').click();
  });
  const shown = [];
  for (const key of keys) {
    d.getElementById('key').value = key;
    d.getElementById('assistant').value = 'asst-1';
    shown.push(await click());
    shown.push(await click());
  }
  await fetch('/report', {method: 'POST', body: JSON.stringify(shown)});
};
</script>`

// TestBrowserPageShows429 runs the demo page itself, under its strict
// Content-Security-Policy, in headless Chromium, with keys whose limits
// allow one call, and checks what it shows a person about the 429: the
// message, when to retry (from Retry-After) and the RateLimit headers.
func TestBrowserPageShows429(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return limitNow }})
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	var keys atomic.Pointer[[]byte]
	srv, reports, _ := probedDemo[[]string](t, h, func() string { return fmt.Sprintf(page429Probe, *keys.Load()) })

	var values []string
	for _, p := range []apikeys.CreateParams{
		{RateLimit: &apikeys.RateLimit{Limit: 1, WindowSeconds: 3600}},
		{Credits: &apikeys.Credits{Remaining: 1}},
	} {
		p.Type, p.Name, p.UserID = apikeys.Public, "page", "demo"
		p.AllowedOrigins, p.AllowedAssistants = []string{srv.URL}, []string{"asst-1"}
		nk, err := m.Create(t.Context(), p)
		require.NoError(t, err)
		values = append(values, nk.Value)
	}
	js, err := json.Marshal(values)
	require.NoError(t, err)
	keys.Store(&js)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	openInBrowser(t, ctx, browser, srv.URL+"/probe", &stderr)
	shown := awaitReport(t, ctx, reports, &stderr)
	for i, s := range shown {
		t.Logf("click %d showed:\n%s", i+1, s)
	}
	require.Len(t, shown, 4)
	for _, tt := range []struct {
		shown         string
		want, wantNot []string
	}{
		{shown[0], []string{"201 {", `RateLimit: "rate_limit";r=0;t=3585`, `RateLimit-Policy: "rate_limit";q=1;w=3600`}, []string{"retry in", "Too many requests"}},
		{shown[1], []string{"429 {", "Too many requests: rate limit exceeded for this key; retry after 3585s (rate_limit)", "retry in 3585 s",
			`RateLimit: "rate_limit";r=0;t=3585`, `RateLimit-Policy: "rate_limit";q=1;w=3600`}, nil},
		{shown[2], []string{"201 {"}, []string{"RateLimit", "retry in"}},
		{shown[3], []string{"429 {", "Too many requests: the key's credits are exhausted (credits)", "No Retry-After: waiting will not help"},
			[]string{"retry in", "RateLimit"}},
	} {
		for _, s := range tt.want {
			assert.Contains(t, tt.shown, s)
		}
		for _, s := range tt.wantNot {
			assert.NotContains(t, tt.shown, s)
		}
	}
}

// tokenProbe is a page on the demo's own origin that loads the demo page
// in a frame and uses it as a person would, with no key pasted: a call
// (which gets a token first), a new token, a call with it, and a call for
// another assistant (which gets a token for that one). It reports what the
// page showed after each step.
const tokenProbe = `<!doctype html><meta charset="utf-8">
<iframe id="demo" src="/webcall" width="1000" height="800"></iframe>
<script>
document.getElementById('demo').onload = async () => {
  const d = document.getElementById('demo').contentDocument, $ = (id) => d.getElementById(id);
  // Clicks button and waits for the first change of element.
  const click = (button, element) => new Promise(resolve => {
    const obs = new MutationObserver(() => { obs.disconnect(); resolve(); });
    obs.observe($(element), {childList: true, characterData: true, subtree: true});
    $(button).click();
  });
  const shown = () => ({tokenInfo: $('token-info').textContent, token: $('token').textContent, out: $('out').textContent});
  const steps = [];
  $('assistant').value = 'asst-1';
  await click('go', 'out');
  steps.push(shown());
  await click('get-token', 'token-info');
  steps.push(shown());
  await click('go', 'out');
  steps.push(shown());
  $('assistant').value = 'asst-2';
  await click('go', 'out');
  steps.push(shown());
  await fetch('/report', {method: 'POST', body: JSON.stringify({origin: location.origin, steps})});
};
</script>`

type tokenStep struct {
	TokenInfo string `json:"tokenInfo"`
	Token     string `json:"token"`
	Out       string `json:"out"`
}

type tokenReport struct {
	Origin string      `json:"origin"`
	Steps  []tokenStep `json:"steps"`
}

// stealPage is a page on another origin that has a token the demo page
// got, and tries to use it, and to get one of its own from the demo's
// backend.
const stealPage = `<!doctype html><meta charset="utf-8"><script>
(async () => {
  const api = %q, token = %q;
  const call = async (name, path, headers, body) => {
    try {
      const res = await fetch(api + path, {method: 'POST', headers, body: JSON.stringify(body)});
      return {name, status: res.status, body: await res.text()};
    } catch (e) {
      return {name, blocked: String(e)};
    }
  };
  const results = [
    await call('call with the token', '/call/web', {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}, {assistant_id: 'asst-1'}),
    await call('mint, JSON', '/demo/token', {'Content-Type': 'application/json'}, {assistant_id: 'asst-1'}),
    await call('mint, simple request', '/demo/token', {'Content-Type': 'text/plain'}, {assistant_id: 'asst-1'}),
  ];
  await fetch('/report', {method: 'POST', body: JSON.stringify({origin: location.origin, results})});
})();
</script>`

// TestBrowserPageToken runs the demo page itself, under its strict
// Content-Security-Policy, in headless Chromium: with no key pasted, it
// gets a token from the demo's backend and starts web calls with it,
// showing the token's expiry and the answers. Then a page on another
// origin, given that token, can neither use it (the API refuses it and
// the browser hides the refusal) nor get a token of its own.
func TestBrowserPageToken(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	keys, _, err := tokenKeys("")
	require.NoError(t, err)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{TokenKeys: keys})
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo"})
	require.NoError(t, err)
	require.NoError(t, bootstrapKeys(t.Context(), m, []string{"demo"}, io.Discard))

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stderr syncBuffer
	srv, reports, answered := probedDemo[tokenReport](t, h, func() string { return tokenProbe })
	openInBrowser(t, ctx, browser, srv.URL+"/probe", &stderr)
	rep := awaitReport(t, ctx, reports, &stderr)
	for i, s := range rep.Steps {
		t.Logf("step %d showed:\n%s\n%s\n%s", i+1, s.TokenInfo, s.Token, s.Out)
	}
	require.Len(t, rep.Steps, 4)
	expiry := regexp.MustCompile(`\nexpires at .+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\), in (\d+) s$`)
	for i, want := range []struct{ assistant, out string }{
		{"asst-1", `201 {"assistant_id":"asst-1"`},
		{"asst-1", `201 {"assistant_id":"asst-1"`}, // the answer of step 1, still shown
		{"asst-1", `201 {"assistant_id":"asst-1"`},
		{"asst-2", `201 {"assistant_id":"asst-2"`},
	} {
		s := rep.Steps[i]
		assert.True(t, strings.HasPrefix(s.TokenInfo, "token for "+srv.URL+" and assistant "+want.assistant+", from key "), "step %d: %q", i+1, s.TokenInfo)
		if m := expiry.FindStringSubmatch(s.TokenInfo); assert.NotNil(t, m, "step %d shows the expiry: %q", i+1, s.TokenInfo) {
			in, _ := strconv.Atoi(m[1])
			assert.True(t, in > 0 && in <= 600, "step %d: a 10-minute token expires in %d s", i+1, in)
		}
		assert.True(t, apikeys.LooksLikeToken(s.Token), "step %d shows the token: %q", i+1, s.Token)
		assert.True(t, strings.HasPrefix(s.Out, want.out), "step %d: %q", i+1, s.Out)
	}
	assert.NotEqual(t, rep.Steps[0].Token, rep.Steps[1].Token, "step 2 got a new token")
	assert.Equal(t, rep.Steps[1].Token, rep.Steps[2].Token, "step 3 called with it")
	assert.NotEqual(t, rep.Steps[2].Token, rep.Steps[3].Token, "another assistant, another token")
	assert.Equal(t, []string{
		"POST /demo/token 201", "POST /call/web 201",
		"POST /demo/token 201", "POST /call/web 201",
		"POST /demo/token 201", "POST /call/web 201",
	}, answered(srv.URL), "what the page asked, from its own origin (same-origin: no preflights)")

	// A page on another origin with the page's token.
	stolen := rep.Steps[2].Token
	thieves := make(chan browserReport, 1)
	thief := reportingOrigin(t, func() string { return fmt.Sprintf(stealPage, srv.URL, stolen) }, thieves)
	openInBrowser(t, ctx, browser, thief.URL+"/", &stderr)
	bad := awaitReport(t, ctx, thieves, &stderr)
	t.Logf("the other origin's page: %+v", bad)
	require.Len(t, bad.Results, 3)
	for _, r := range bad.Results {
		assert.NotEmpty(t, r.Blocked, "%s from another origin was readable: %d %s", r.Name, r.Status, r.Body)
		assert.Zero(t, r.Status, r.Name)
	}
	got := answered(thief.URL)
	t.Logf("answers to the other origin: %v", got)
	assert.Contains(t, got, "POST /call/web 403", "the API itself refused the token from another origin")
	for _, a := range got {
		assert.NotContains(t, a, " 201", "nothing succeeded for the other origin")
	}
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

// probedDemo serves the demo handler h with probe(), a page that drives
// it, at GET /probe; what the page POSTs to /report arrives on reports, and
// answered tells what the demo answered to requests from an origin
// ("" for none), as "METHOD PATH STATUS".
func probedDemo[T any](t *testing.T, h http.Handler, probe func() string) (srv *httptest.Server, reports <-chan T, answered func(origin string) []string) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen = map[string][]string{}
	)
	ch := make(chan T, 1)
	mux := http.NewServeMux()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		mu.Lock()
		defer mu.Unlock()
		o := r.Header.Get("Origin")
		seen[o] = append(seen[o], fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.status))
	}))
	mux.HandleFunc("GET /probe", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, probe())
	})
	mux.HandleFunc("POST /report", func(_ http.ResponseWriter, r *http.Request) {
		var rep T
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			t.Errorf("bad report: %v", err)
		}
		select {
		case ch <- rep:
		default:
		}
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ch, func(origin string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen[origin])
	}
}

// awaitReport returns the first report, or fails the test when ctx ends
// first, with what the browser said.
func awaitReport[T any](t *testing.T, ctx context.Context, reports <-chan T, browserOut *syncBuffer) T {
	t.Helper()
	select {
	case rep := <-reports:
		return rep
	case <-ctx.Done():
		t.Fatalf("the browser's page did not report before the deadline; chromium said:\n%s", browserOut.String())
		panic("unreachable")
	}
}

// signInProbe is a page on the demo's own origin that signs in as a person
// would (the form's POST, from this origin), then loads the web-call page
// in a frame and reports what it shows of the session.
const signInProbe = `<!doctype html><meta charset="utf-8"><body><script>
(async () => {
  const report = {};
  try {
    const res = await fetch('/signin', {method: 'POST', body: new URLSearchParams({user: 'alice', next: '/webcall'})});
    report.status = res.status;
    report.url = res.url;
    const f = document.createElement('iframe');
    f.src = '/webcall';
    const loaded = new Promise(resolve => { f.onload = resolve; });
    document.body.append(f);
    await loaded;
    const d = f.contentDocument, text = (id) => d.getElementById(id) ? d.getElementById(id).textContent : null;
    report.user = text('signed-in-user');
    report.note = text('origin-note');
    report.base = d.getElementById('base').value;
  } catch (e) {
    report.error = String(e);
  }
  await fetch('/report', {method: 'POST', body: JSON.stringify(report)});
})();
</script>`

// crossSiteSignIn is a page on another origin that posts the sign-in form
// to the demo, as a forged form would.
const crossSiteSignIn = `<!doctype html><meta charset="utf-8"><script>
(async () => {
  let sent = 'sent';
  try {
    await fetch(%q + '/signin', {method: 'POST', mode: 'no-cors', credentials: 'include', body: new URLSearchParams({user: 'mallory', next: '/'})});
  } catch (e) {
    sent = String(e);
  }
  await fetch('/report', {method: 'POST', body: JSON.stringify({origin: location.origin, results: [{name: sent}]})});
})();
</script>`

type signInReport struct {
	Status int     `json:"status"`
	URL    string  `json:"url"`
	User   *string `json:"user"`
	Note   *string `json:"note"`
	Base   string  `json:"base"`
	Error  string  `json:"error"`
}

// TestBrowserSignIn: in headless Chromium, the sign-in form's POST from
// the demo's own origin signs in (the browser keeps the session cookie and
// follows the redirect to next), and the web-call page then shows the user
// and the note about public keys; the same POST from another origin is
// refused (403) by the cross-origin protection.
func TestBrowserSignIn(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)

	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"alice"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	srv, reports, answered := probedDemo[signInReport](t, h, func() string { return signInProbe })
	openInBrowser(t, ctx, browser, srv.URL+"/probe", &stderr)
	rep := awaitReport(t, ctx, reports, &stderr)
	t.Logf("signed in: %+v", rep)
	require.Empty(t, rep.Error)
	assert.Equal(t, http.StatusOK, rep.Status)
	assert.Equal(t, srv.URL+"/webcall", rep.URL, "the browser followed the redirect to next")
	if assert.NotNil(t, rep.User, "the web-call page shows who is signed in") {
		assert.Equal(t, "alice", *rep.User)
	}
	if assert.NotNil(t, rep.Note, "the web-call page has the note about public keys") {
		assert.Contains(t, *rep.Note, "must allow this page's origin")
		assert.Contains(t, *rep.Note, srv.URL)
	}
	assert.Equal(t, srv.URL, rep.Base, "the page's script ran")

	thieves := make(chan browserReport, 1)
	thief := reportingOrigin(t, func() string { return fmt.Sprintf(crossSiteSignIn, srv.URL) }, thieves)
	openInBrowser(t, ctx, browser, thief.URL+"/", &stderr)
	awaitReport(t, ctx, thieves, &stderr)
	assert.Equal(t, []string{"POST /signin 403"}, answered(thief.URL), "the sign-in from another origin")
	assert.Contains(t, answered(srv.URL), "POST /signin 303", "the sign-in from the demo's own origin")
}
