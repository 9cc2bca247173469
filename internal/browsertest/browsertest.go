// Package browsertest runs tests in a headless Chromium through chromedp:
// New starts the browser for a test and fails the test at its end if the
// page logged an error, threw an uncaught exception, or violated its
// Content-Security-Policy (Trusted Types included).
//
// The browser is found in $APIKEYS_TEST_CHROMIUM, else as chromium,
// chromium-browser or google-chrome on PATH. Without one the test is
// skipped, except in CI (CI=true), where it fails.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each test's use of the browser, waits included.
const Timeout = 60 * time.Second

// violationsScript runs in every document before its own scripts (CSP does
// not apply to it) and records the page's CSP and Trusted Types violations.
const violationsScript = `(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
      " at " + e.sourceFile + ":" + e.lineNumber + (e.sample ? " (" + e.sample + ")" : ""));
  });
})();`

type state struct {
	mu      sync.Mutex
	errs    []string
	allowed []*regexp.Regexp
	shots   int
}

type stateKey struct{}

func stateOf(ctx context.Context) *state {
	s, _ := ctx.Value(stateKey{}).(*state)
	if s == nil {
		panic("browsertest: the context does not come from browsertest.New")
	}
	return s
}

// ExecPath returns the browser to run, or "" when there is none.
func ExecPath() string {
	if p := os.Getenv("APIKEYS_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for t and returns a context for chromedp
// actions, bound by Timeout. At t's cleanup it fails t if the page logged
// a console error, threw an uncaught exception, or violated its CSP,
// except for messages that AllowErrors allowed.
func New(t *testing.T) context.Context {
	t.Helper()
	execPath := ExecPath()
	if execPath == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: no Chromium found (set APIKEYS_TEST_CHROMIUM, or install chromium); CI=true, so not skipping")
		}
		t.Skip("browsertest: no Chromium found (set APIKEYS_TEST_CHROMIUM, or install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-US"),
		chromedp.Env("TZ=UTC"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	s := &state{}
	ctx, cancelCtx := chromedp.NewContext(context.WithValue(allocCtx, stateKey{}, s),
		chromedp.WithErrorf(func(format string, args ...any) { t.Logf("chromedp: "+format, args...) }))
	// Start the browser with no deadline: a deadline on the first Run
	// would be the browser's life.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("browsertest: starting %s: %v", execPath, err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				text := m.String()
				if m.URL != "" {
					text += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
				}
				s.add(text)
			}
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: violationsScript}); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("browsertest: installing the CSP listener: %v", err)
	}
	// The page counts as focused, as a user's would be: the clipboard, for
	// one, refuses an unfocused document.
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled,
		emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("browsertest: focus emulation: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, Timeout)
	t.Cleanup(func() {
		// The page's CSP violations, read before the browser goes.
		if v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations || []`)); err == nil {
			for _, e := range v {
				s.add("CSP violation: " + e)
			}
		}
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		<-done
		for _, e := range s.unexpected() {
			t.Errorf("browsertest: the page reported: %s", e)
		}
	})
	return tctx
}

func (s *state) add(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, e)
}

func (s *state) unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
next:
	for _, e := range s.errs {
		for _, re := range s.allowed {
			if re.MatchString(e) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// AllowErrors lets the page of ctx report errors that match pattern (a
// regular expression) without failing the test: for a test that provokes
// one on purpose, such as a failed request the browser logs.
func AllowErrors(ctx context.Context, pattern string) {
	s := stateOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = append(s.allowed, regexp.MustCompile(pattern))
}

// Errors returns what the page of ctx reported so far (console errors,
// uncaught exceptions; CSP violations are collected at the end), allowed
// or not.
func Errors(ctx context.Context) []string {
	s := stateOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// CSPViolations returns the page's CSP violations so far.
func CSPViolations(ctx context.Context) ([]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations || []`))
}

// ScreenshotDir is where Screenshot writes: $APIKEYS_SCREENSHOT_DIR, or
// apikeys-screenshots in the temporary directory.
func ScreenshotDir() string {
	if d := os.Getenv("APIKEYS_SCREENSHOT_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "apikeys-screenshots")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot writes a PNG of the viewport to
// ScreenshotDir()/<TestName>/NN-name.png, numbered in order, logs its path
// and returns it.
func Screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	s := stateOf(ctx)
	s.mu.Lock()
	s.shots++
	n := s.shots
	s.mu.Unlock()
	dir := filepath.Join(ScreenshotDir(), unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	file := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	t.Logf("screenshot: %s", file)
	return file
}

// GrantClipboard lets pages of origin (scheme://host:port) read and write
// the clipboard without a prompt.
func GrantClipboard(ctx context.Context, origin string) error {
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted,
			Origin:     origin,
		})
		if err != nil {
			return fmt.Errorf("browsertest: granting %s to %s: %w", name, origin, err)
		}
	}
	return nil
}

// ReadClipboard returns the clipboard's text, read by the current page
// (which needs GrantClipboard for its origin).
func ReadClipboard(ctx context.Context) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		return "", fmt.Errorf("browsertest: reading the clipboard: %w", err)
	}
	return s, nil
}

// ErrNotFocused is returned by WaitFocus when the element never got focus.
var ErrNotFocused = errors.New("browsertest: element not focused")

// WaitFocus waits until document.activeElement matches the CSS selector.
func WaitFocus(ctx context.Context, selector string) error {
	expr := `document.activeElement && document.activeElement.matches(` + jsString(selector) + `)`
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		active, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.outerHTML.slice(0, 200) : "none"`))
		return fmt.Errorf("%w: %s (focused: %s): %v", ErrNotFocused, selector, active, err)
	}
	return nil
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
