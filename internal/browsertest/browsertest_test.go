package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/apikeys/internal/browsertest"
)

// New collects the page's console errors, uncaught exceptions and CSP
// violations (here all allowed, so that the test can look at them).
func TestNewCollectsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<!doctype html><title>t</title><p id="p">hi</p><script src="/a.js"></script><script>inline()</script>`))
		case "/a.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write([]byte(`console.error("boom from a.js"); setTimeout(() => { throw new Error("uncaught one"); }, 0);`))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ctx := browsertest.New(t)
	browsertest.AllowErrors(ctx, `.`)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("p"))); err != nil {
		t.Fatal(err)
	}
	// Wait for the messages, bounded: they come as events.
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := strings.Join(browsertest.Errors(ctx), "\n")
		if strings.Contains(all, "boom from a.js") && strings.Contains(all, "uncaught one") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors not collected; got:\n%s", all)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`true`)); err != nil { // a round trip, not a sleep
			t.Fatal(err)
		}
	}
	v, err := browsertest.CSPViolations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 || !strings.Contains(v[0], "script-src") {
		t.Errorf("CSP violations = %q, want the inline script's", v)
	}
	browsertest.Screenshot(t, ctx, "page")
}

// The clipboard can be granted, written and read in headless Chromium.
func TestClipboard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><p id="p">hi</p>`))
	}))
	defer srv.Close()
	ctx := browsertest.New(t)
	if err := browsertest.GrantClipboard(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("p")),
		chromedp.Evaluate[chromedp.Void](`navigator.clipboard.writeText("hello clipboard")`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	got, err := browsertest.ReadClipboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello clipboard" {
		t.Errorf("clipboard = %q", got)
	}
}
