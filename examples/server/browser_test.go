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
	"strings"
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
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
		// Headless Chromium opens one page per process.
		cmd := exec.CommandContext(ctx, browser,
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-extensions", "--user-data-dir="+t.TempDir(), page)
		cmd.WaitDelay = 5 * time.Second
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
		})
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
