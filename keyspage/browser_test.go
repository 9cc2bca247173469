package keyspage_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/browsertest"
	"github.com/keyward/apikeys/keyspage"
	"github.com/keyward/apikeys/memstore"
)

// browserServer serves the page at prefix/ on a memstore Manager, with a
// test-only sign-in route (/signin?user=NAME) that sets the session
// cookie and sends the browser to the page.
func browserServer(t *testing.T) (*apikeys.Manager, *httptest.Server) {
	t.Helper()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	page, err := keyspage.New(m, &keyspage.Config{Prefix: prefix, Owner: sessionUser, SignInURL: "/signin"})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", page)
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "user", Value: r.URL.Query().Get("user"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, prefix+"/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return m, srv
}

// run runs chromedp steps, failing the test at the first error.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return s
}

func value(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return s
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

func TestBrowserKeysPage(t *testing.T) {
	m, srv := browserServer(t)
	ctx := browsertest.New(t)
	bg := context.Background()
	shot := func(name string) { browsertest.Screenshot(t, ctx, name) }
	keys := func() []apikeys.Key {
		p, err := m.List(bg, "alice", apikeys.ListParams{})
		require.NoError(t, err)
		return p.Keys
	}

	require.NoError(t, browsertest.GrantClipboard(ctx, srv.URL))
	run(t, ctx,
		chromedp.Navigate(srv.URL+"/signin?user=alice"),
		chromedp.WaitVisible(css("#no-keys")),
	)
	assert.Equal(t, "alice@example.com", text(t, ctx, "#user"))
	shot("empty")

	// Keyboard: Enter on #new-key opens the dialog, Escape closes it and
	// focus returns to the button.
	run(t, ctx,
		chromedp.Focus(css("#new-key")),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(css("#create-dialog")),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, "#create-name"))
	run(t, ctx,
		chromedp.KeyEvent(kb.Escape),
		chromedp.WaitNotVisible(css("#create-dialog")),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, "#new-key"))

	// A public key with a bad origin: the error is next to the field and
	// nothing is created. The browser logs the 400 as a failed resource.
	browsertest.AllowErrors(ctx, `status of 400 \(Bad Request\)`)
	run(t, ctx,
		chromedp.Click(css("#new-key")),
		chromedp.WaitVisible(css("#create-dialog")),
		chromedp.SendKeys(css("#create-name"), "Website widget"),
	)
	// An empty origin list means no browser for a private key, any origin
	// for a public one: the hint says which.
	run(t, ctx, chromedp.Click(css("#create-key_type-private")))
	assert.Contains(t, text(t, ctx, "#create-allowed_origins-hint"), "Empty: no browser may use it")
	run(t, ctx,
		chromedp.Click(css("#create-key_type-public")),
		chromedp.WaitVisible(css("#create-add-origin")),
	)
	assert.Contains(t, text(t, ctx, "#create-allowed_origins-hint"), "Empty: any origin.")
	run(t, ctx,
		chromedp.SendKeys(css("#create-allowed_origins"), "https://ok.example.com\nnot an origin"),
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css("#create-allowed_origins-error")),
	)
	errText := text(t, ctx, "#create-allowed_origins-error")
	assert.Contains(t, errText, "Line 2", "the index of the bad entry is shown as its line")
	ariaInvalid, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#create-allowed_origins"), "aria-invalid"))
	require.NoError(t, err)
	assert.Equal(t, "true", ariaInvalid.Value)
	assert.Contains(t, text(t, ctx, "#create-error"), "highlighted")
	run(t, ctx, chromedp.WaitVisible(css("#create-dialog")))
	require.Empty(t, keys(), "a refused create made a key")
	shot("create-error")

	// Fixed: the page suggests its own origin.
	run(t, ctx,
		browsertest.SetValue("#create-allowed_origins", ""),
		chromedp.Click(css("#create-add-origin")),
		chromedp.WaitNotVisible(css("#create-add-origin")),
	)
	assert.Equal(t, srv.URL, value(t, ctx, "#create-allowed_origins"))
	shot("create-filled")
	run(t, ctx,
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css("#value-dialog")),
		chromedp.WaitNotVisible(css("#create-dialog")),
	)
	ks := keys()
	require.Len(t, ks, 1)
	k := ks[0]
	assert.Equal(t, apikeys.Public, k.Type)
	assert.Equal(t, "Website widget", k.Name)
	assert.Equal(t, []string{srv.URL}, k.AllowedOrigins)
	v1 := value(t, ctx, "#key-value")
	require.NotEmpty(t, v1)
	ver, err := m.Verify(bg, v1)
	require.NoError(t, err)
	assert.True(t, ver.Valid, "the value shown does not verify: %s", ver.Reason)
	assert.Equal(t, k.ID, ver.Key.ID)
	assert.Contains(t, text(t, ctx, "#value-warning"), "not be shown again")

	// Copy: the clipboard holds the value.
	run(t, ctx, chromedp.Click(css("#copy-value")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("copy-status").textContent === "Copied"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "copy-status: %q", text(t, ctx, "#copy-status"))
	clip, err := browsertest.ReadClipboard(ctx)
	require.NoError(t, err)
	assert.Equal(t, v1, clip)
	shot("value")
	run(t, ctx,
		chromedp.Click(css("#value-done")),
		chromedp.WaitNotVisible(css("#value-dialog")),
		chromedp.WaitVisible(css(browsertest.KeyRow(k.ID))),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, "#new-key"))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("key-value").value === ""`,
		chromedp.WithPollingTimeout(10*time.Second)))
	assert.NoError(t, err, "the value stays in the page after its dialog closed")
	assert.Contains(t, text(t, ctx, browsertest.KeyRow(k.ID)), k.Hint)
	shot("created")

	// Edit: a bad IP is refused next to its field, then origins, a rate
	// limit and credits are saved.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(k.ID, "edit")),
		chromedp.WaitVisible(css("#edit-dialog")),
	)
	assert.Equal(t, "Website widget", value(t, ctx, "#edit-name"))
	run(t, ctx,
		chromedp.SendKeys(css("#edit-allowed_ips"), "not-an-ip"),
		chromedp.Click(css("#edit-submit")),
		chromedp.WaitVisible(css("#edit-allowed_ips-error")),
	)
	shot("edit-error")
	run(t, ctx,
		browsertest.SetValue("#edit-allowed_ips", ""),
		browsertest.SetValue("#edit-allowed_origins", "https://app.example.com\nhttps://www.example.com"),
		chromedp.Click(css("#edit-rate_limit")),
		chromedp.WaitVisible(css("#edit-rate_limit-limit")),
		chromedp.SendKeys(css("#edit-rate_limit-limit"), "100"),
		chromedp.SendKeys(css("#edit-rate_limit-window_seconds"), "60"),
		chromedp.Click(css("#edit-credits")),
		chromedp.WaitVisible(css("#edit-credits-remaining")),
		chromedp.SendKeys(css("#edit-credits-remaining"), "500"),
		chromedp.Click(css("#edit-credits-refill")),
		chromedp.WaitVisible(css("#edit-credits-refill-amount")),
		chromedp.SendKeys(css("#edit-credits-refill-amount"), "500"),
		chromedp.SendKeys(css("#edit-credits-refill-interval_seconds"), "86400"),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, "#edit-credits-refill-interval_seconds"))
	assert.True(t, isHidden(t, ctx, "#edit-allowed_ips-error") || text(t, ctx, "#edit-allowed_ips-error") != "")
	shot("edit-filled")
	run(t, ctx,
		chromedp.Click(css("#edit-submit")),
		chromedp.WaitNotVisible(css("#edit-dialog")),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, browsertest.KeyRow(k.ID)+` button[data-action="edit"]`))
	got, err := m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://app.example.com", "https://www.example.com"}, got.AllowedOrigins)
	assert.Empty(t, got.AllowedIPs)
	require.NotNil(t, got.RateLimit)
	assert.Equal(t, apikeys.RateLimit{Limit: 100, WindowSeconds: 60}, *got.RateLimit)
	require.NotNil(t, got.Credits)
	assert.EqualValues(t, 500, got.Credits.Remaining)
	require.NotNil(t, got.Credits.Refill)
	assert.Equal(t, apikeys.Refill{Amount: 500, IntervalSeconds: 86400}, *got.Credits.Refill)
	assert.Contains(t, text(t, ctx, browsertest.KeyRow(k.ID)), "100 per minute")
	shot("edited")

	// Disable and enable.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(k.ID, "disable")),
		chromedp.WaitVisible(css(browsertest.KeyRow(k.ID)+`[data-enabled="false"] button[data-action="enable"]`)),
		chromedp.WaitNotPresent(browsertest.KeyAction(k.ID, "disable")),
	)
	got, err = m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	shot("disabled")
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(k.ID, "enable")),
		chromedp.WaitVisible(css(browsertest.KeyRow(k.ID)+`[data-enabled="true"] button[data-action="disable"]`)),
	)
	got, err = m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled)

	// Rotate with one hour of grace: a new value, the old key retiring.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(k.ID, "rotate")),
		chromedp.WaitVisible(css("#rotate-dialog")),
	)
	assert.Contains(t, text(t, ctx, "#rotate-dialog"), "Website widget")
	graces, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#rotate-grace option")].map(o => o.value)`))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "3600", "86400", "604800", "2592000"}, graces)
	shot("rotate")
	run(t, ctx,
		browsertest.SetValue("#rotate-grace", "3600"),
		chromedp.Click(css("#rotate-confirm")),
		chromedp.WaitVisible(css("#value-dialog")),
	)
	v2 := value(t, ctx, "#key-value")
	require.NotEmpty(t, v2)
	assert.NotEqual(t, v1, v2)
	ver, err = m.Verify(bg, v2)
	require.NoError(t, err)
	require.True(t, ver.Valid, "the rotated value does not verify: %s", ver.Reason)
	successor := ver.Key.ID
	old, err := m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.Equal(t, successor, old.SuccessorID)
	assert.WithinDuration(t, time.Now().Add(time.Hour), old.ExpiresAt, 5*time.Minute)
	assert.Contains(t, text(t, ctx, "#value-note"), "1 hour")
	shot("rotated-value")
	run(t, ctx,
		chromedp.Click(css("#value-done")),
		chromedp.WaitNotVisible(css("#value-dialog")),
		chromedp.WaitVisible(css(browsertest.KeyRow(k.ID)+`[data-status="retiring"]`)),
		chromedp.WaitVisible(css(browsertest.KeyRow(successor))),
	)
	require.NoError(t, browsertest.WaitFocus(ctx, browsertest.KeyRow(successor)+` button[data-action="edit"]`))
	shot("rotated")

	// Delete, confirmed: the row goes and so does the key.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(successor, "delete")),
		chromedp.WaitVisible(css("#delete-dialog")),
	)
	assert.Contains(t, text(t, ctx, "#delete-name"), "Website widget")
	shot("delete")
	run(t, ctx,
		chromedp.Click(css("#delete-confirm")),
		chromedp.WaitNotVisible(css("#delete-dialog")),
		chromedp.WaitNotPresent(css(browsertest.KeyRow(successor))),
	)
	_, err = m.Get(bg, "alice", successor)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(k.ID, "delete")),
		chromedp.WaitVisible(css("#delete-dialog")),
		chromedp.Click(css("#delete-confirm")),
		chromedp.WaitVisible(css("#no-keys")),
	)
	_, err = m.Get(bg, "alice", k.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("status").textContent.startsWith("Deleted")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	assert.NoError(t, err, "the live region announces the deletion: %q", text(t, ctx, "#status"))

	// A list with realistic keys, wide and on a phone.
	seed(t, m, "alice")
	run(t, ctx,
		chromedp.EmulateViewport(1200, 700),
		chromedp.Reload(),
		chromedp.WaitVisible(css("#keys tbody tr")),
	)
	wide := browsertest.Screenshot(t, ctx, "list-wide")
	if os.Getenv("APIKEYS_UPDATE_DOCS") == "1" {
		_, file, _, _ := runtime.Caller(0)
		dst := filepath.Join(filepath.Dir(file), "..", "docs", "keys-page.png")
		buf, err := os.ReadFile(wide)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, buf, 0o644))
		t.Logf("wrote %s", dst)
	}
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Reload(),
		chromedp.WaitVisible(css("#keys tbody tr")),
	)
	shot("list-phone")
	// Stacked cards: no header row, and each action is a 44px target.
	headVisible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("#keys thead")).display !== "none"`))
	require.NoError(t, err)
	assert.False(t, headVisible, "the table header shows on a phone")
	minHeight, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.min(...[...document.querySelectorAll("#keys button, #new-key")].map(b => b.getBoundingClientRect().height))`))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, minHeight, 44.0)
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	assert.False(t, overflow, "the page scrolls sideways on a phone")
	run(t, ctx,
		chromedp.Click(css("#new-key")),
		chromedp.WaitVisible(css("#create-dialog")),
	)
	shot("create-phone")
	run(t, ctx, chromedp.Click(css(`#create-dialog [data-action="cancel"]`)), chromedp.WaitNotVisible(css("#create-dialog")))
	require.NoError(t, browsertest.WaitFocus(ctx, "#new-key"))
}

func isHidden(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	h, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+"`"+sel+"`"+`).hidden`))
	require.NoError(t, err)
	return h
}

// seed gives user a few realistic keys for the screenshots.
func seed(t *testing.T, m *apikeys.Manager, user string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []apikeys.CreateParams{
		{Type: apikeys.Private, Name: "Production backend", Scopes: []string{"calls:write", "assistants:read"},
			AllowedIPs: []string{"203.0.113.0/24"}, RateLimit: &apikeys.RateLimit{Limit: 600, WindowSeconds: 60}},
		{Type: apikeys.Public, Name: "Website voice widget", AllowedOrigins: []string{"https://www.example.com", "https://shop.example.com"},
			AllowedAssistants: []string{"support-agent"},
			Credits:           &apikeys.Credits{Remaining: 5000, Refill: &apikeys.Refill{Amount: 5000, IntervalSeconds: 86400}}},
		{Type: apikeys.Private, Name: "Staging CI", Disabled: true, ExpiresAt: time.Now().Add(90 * 24 * time.Hour)},
	} {
		p.UserID, p.UserEmail = user, user+"@example.com"
		_, err := m.Create(ctx, p)
		require.NoError(t, err)
	}
}

// The page reports a page that breaks its CSP: the check that makes the
// browser test able to fail. It serves the real page with a script that
// uses innerHTML, which Trusted Types refuses.
func TestBrowserReportsTrustedTypesViolation(t *testing.T) {
	_, srv := browserServer(t)
	ctx := browsertest.New(t)
	browsertest.AllowErrors(ctx, `.`) // expected here; asserted below
	run(t, ctx,
		chromedp.Navigate(srv.URL+"/signin?user=bob"),
		chromedp.WaitVisible(css("#no-keys")),
	)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("no-keys").innerHTML = "<b>x</b>"`))
	require.Error(t, err, "innerHTML worked: Trusted Types are not enforced")
	v, err := browsertest.CSPViolations(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, v)
	assert.True(t, strings.Contains(strings.Join(v, "\n"), "trusted-types") || strings.Contains(strings.Join(v, "\n"), "require-trusted-types-for"), "%v", v)
}

// TestBrowserPagingAndEndedSession: a user with more keys than one page
// sees the first 100, and "Load more" brings the rest; when the session
// ends while the page is open, the next action says so, with a link to
// sign in again, and changes nothing.
func TestBrowserPagingAndEndedSession(t *testing.T) {
	m, srv := browserServer(t)
	mux := srv.Config.Handler.(*http.ServeMux)
	mux.HandleFunc("POST /signout", func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "user", Value: "", Path: "/", MaxAge: -1})
	})
	ctx := browsertest.New(t)
	const total = 105
	var first apikeys.NewKey
	for i := range total {
		nk, err := m.Create(context.Background(), apikeys.CreateParams{Type: apikeys.Public, Name: fmt.Sprintf("key %03d", i), UserID: "bob"})
		require.NoError(t, err)
		if i == 0 {
			first = nk // the oldest: on the second page
		}
	}
	rows := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#keys tbody tr[data-key-id]").length`))
		require.NoError(t, err)
		return n
	}
	run(t, ctx,
		chromedp.Navigate(srv.URL+"/signin?user=bob"),
		chromedp.WaitVisible(css("#load-more")),
	)
	assert.Equal(t, 100, rows(), "the first page")
	run(t, ctx,
		chromedp.Click(css("#load-more")),
		chromedp.WaitVisible(css(browsertest.KeyRow(first.ID))),
		chromedp.WaitNotVisible(css("#load-more")),
	)
	assert.Equal(t, total, rows(), "all keys, once each")
	browsertest.Screenshot(t, ctx, "all-loaded")

	// The session ends (signed out in another tab, say); the page is still
	// open and its next change is refused.
	browsertest.AllowErrors(ctx, `status of 401 \(Unauthorized\)`)
	run(t, ctx,
		chromedp.Evaluate[chromedp.Void](`fetch("/signout", {method: "POST"}).then(() => true)`, chromedp.EvalAwaitPromise),
		chromedp.Click(browsertest.KeyAction(first.ID, "disable")),
		chromedp.WaitVisible(css("#page-error")),
	)
	assert.Equal(t, "Your session has ended. Reload the page to sign in again.", text(t, ctx, "#page-error"), "said once")
	inView, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const r = document.getElementById("page-error").getBoundingClientRect();
		return r.top >= 0 && r.bottom <= window.innerHeight; })()`))
	require.NoError(t, err)
	assert.True(t, inView, "the message is shown where the user is, not above the fold of a long list")
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#page-error a").getAttribute("href")`))
	require.NoError(t, err)
	assert.Equal(t, prefix+"/", href, "the link reloads the page, which sends the visitor to sign in")
	browsertest.Screenshot(t, ctx, "session-ended")
	k, err := m.Get(context.Background(), "bob", first.ID)
	require.NoError(t, err)
	assert.False(t, k.Disabled, "nothing changed")
}

// TestBrowserEditSendsOnlyChanges: saving the edit dialog sends only the
// members the user changed. A rename must not set the credits again to
// what the page showed when it loaded, undoing what the key spent since;
// saving with no change writes nothing.
func TestBrowserEditSendsOnlyChanges(t *testing.T) {
	m, srv := browserServer(t)
	ctx := browsertest.New(t)
	bg := context.Background()
	nk, err := m.Create(bg, apikeys.CreateParams{Type: apikeys.Public, Name: "budget", UserID: "carol",
		Credits: &apikeys.Credits{Remaining: 5, Refill: &apikeys.Refill{Amount: 5, IntervalSeconds: 86400}}})
	require.NoError(t, err)
	run(t, ctx,
		chromedp.Navigate(srv.URL+"/signin?user=carol"),
		chromedp.WaitVisible(css(browsertest.KeyRow(nk.ID))),
	)
	// The page shows 5 credits; the key spends 2 meanwhile.
	for range 2 {
		_, err := m.Authorize(bg, nk.Value, apikeys.Request{})
		require.NoError(t, err)
	}
	before, err := m.Get(bg, "carol", nk.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), before.Credits.Remaining)

	// Saved unchanged: nothing is written.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(nk.ID, "edit")),
		chromedp.WaitVisible(css("#edit-dialog")),
		chromedp.Click(css("#edit-submit")),
		chromedp.WaitNotVisible(css("#edit-dialog")),
	)
	got, err := m.Get(bg, "carol", nk.ID)
	require.NoError(t, err)
	assert.True(t, before.UpdatedAt.Equal(got.UpdatedAt), "an unchanged form wrote the key")

	// Renamed: only the name changes.
	run(t, ctx,
		chromedp.Click(browsertest.KeyAction(nk.ID, "edit")),
		chromedp.WaitVisible(css("#edit-dialog")),
		browsertest.SetValue("#edit-name", "renamed"),
		chromedp.Click(css("#edit-submit")),
		chromedp.WaitNotVisible(css("#edit-dialog")),
	)
	got, err = m.Get(bg, "carol", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	assert.Equal(t, int64(3), got.Credits.Remaining, "the rename set the credits back to what the page showed")
	assert.Equal(t, before.Usage.RefilledAt, got.Usage.RefilledAt, "the rename restarted the refill")
}
