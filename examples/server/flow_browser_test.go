package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/browsertest"
	"github.com/keyward/apikeys/memstore"
)

// flowPoll bounds each wait for a page's state in TestBrowserWholeFlow
// (browsertest's context bounds the whole test).
const flowPoll = 15 * time.Second

// flowBrowser drives the demo in one headless Chromium tab.
type flowBrowser struct {
	t   *testing.T
	ctx context.Context
	url string // the demo's origin, http://127.0.0.1:PORT
}

// run runs chromedp steps, failing the test at the first error.
func (b *flowBrowser) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, steps...))
}

func (b *flowBrowser) shot(name string) { b.t.Helper(); browsertest.Screenshot(b.t, b.ctx, name) }

func (b *flowBrowser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	require.NoError(b.t, err, sel)
	return s
}

func (b *flowBrowser) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(b.t, err, sel)
	return s
}

func (b *flowBrowser) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(b.t, err)
	return s
}

// poll waits, bounded, until the JavaScript expression is true; msg says
// what was awaited.
func (b *flowBrowser) poll(expr, msg string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(flowPoll)))
	require.NoError(b.t, err, msg)
}

// keysPage opens the API-keys page and waits for its list of keys.
func (b *flowBrowser) keysPage(id uuid.UUID) {
	b.t.Helper()
	b.run(
		chromedp.Navigate(b.url+keysPrefix+"/"),
		chromedp.WaitVisible(chromedp.CSS(browsertest.KeyRow(id))),
	)
}

// webCall opens the web-call page, pastes key into its public-key field
// and starts a call for assistant asst-demo; it returns what the page
// shows as the answer.
func (b *flowBrowser) webCall(key string) string {
	b.t.Helper()
	b.run(
		chromedp.Navigate(b.url+"/webcall"),
		chromedp.WaitVisible(chromedp.CSS("#go")),
	)
	b.poll(`document.getElementById("base").value === location.origin`, "the web-call page's script ran")
	b.run(
		// The public-key field is in a closed <details>: open it as a person would.
		chromedp.Click(chromedp.CSS("details.panel summary")),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		browsertest.SetValue("#assistant", "asst-demo"),
	)
	require.Equal(b.t, key, b.value("#key"))
	b.run(chromedp.Click(chromedp.CSS("#go")))
	b.poll(`document.getElementById("out").textContent !== "(result)"`, "the web call got no answer")
	// The answer in view, for the screenshot.
	b.run(chromedp.Evaluate[chromedp.Void](`document.getElementById("out").scrollIntoView({block: "center"})`))
	return b.text("#out")
}

// requireStatus checks the web-call page's answer starts with status.
func requireStatus(t *testing.T, status int, out string) {
	t.Helper()
	require.True(t, strings.HasPrefix(out, fmt.Sprintf("%d ", status)), "the web-call page shows %q, want %d", out, status)
}

// TestBrowserWholeFlow is issue 16's acceptance test: in headless Chromium,
// a person signs in to the demo, creates a public key for the page's
// origin, copies its value, calls with it from the web-call page
// (allowed), restricts it to another origin (refused), disables and
// re-enables it, rotates it and deletes it, with no console errors or CSP
// violations beyond the refused calls the browser logs, and a screenshot
// of each step.
func TestBrowserWholeFlow(t *testing.T) {
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	h, err := newHandler(m, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"demo", "alice"})
	require.NoError(t, err)
	srv := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(srv.Close)

	ctx := browsertest.New(t)
	b := &flowBrowser{t: t, ctx: ctx, url: srv.URL}
	bg := context.Background()
	// Chromium logs each refused call (401, 403) as a failed resource; the
	// steps below provoke them on purpose, only on /call/web.
	browsertest.AllowErrors(ctx, `^error: Failed to load resource: the server responded with a status of (401 \(Unauthorized\)|403 \(Forbidden\)) \(`+
		regexp.QuoteMeta(srv.URL+"/call/web")+`:\d+\)$`)
	require.NoError(t, browsertest.GrantClipboard(ctx, srv.URL))
	aliceKeys := func() []apikeys.Key {
		p, err := m.List(bg, "alice", apikeys.ListParams{})
		require.NoError(t, err)
		return p.Keys
	}

	// 1. The landing page, its sign-in link, the sign-in page (which
	// carries next), alice's button: back on the API-keys page.
	b.run(
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#go-signin")),
	)
	b.shot("landing")
	b.run(
		chromedp.Click(chromedp.CSS("#go-signin")),
		chromedp.WaitVisible(chromedp.CSS(`#pick-user button[value="alice"]`)),
	)
	loc, err := url.Parse(b.location())
	require.NoError(t, err)
	assert.Equal(t, "/signin", loc.Path)
	assert.Equal(t, keysPrefix+"/", loc.Query().Get("next"))
	assert.Equal(t, keysPrefix+"/", b.value(`#pick-user input[name="next"]`))
	b.shot("signin")
	b.run(
		chromedp.Click(chromedp.CSS(`#pick-user button[value="alice"]`)),
		chromedp.WaitVisible(chromedp.CSS("#no-keys")),
	)
	assert.Equal(t, srv.URL+keysPrefix+"/", b.location(), "the sign-in went on to next")
	assert.Equal(t, "alice@demo.example", b.text("#user"))
	b.shot("signed-in")

	// 2. A public key for this page's origin and the assistant asst-demo;
	// its value, copied.
	b.run(
		chromedp.Click(chromedp.CSS("#new-key")),
		chromedp.WaitVisible(chromedp.CSS("#create-dialog")),
		chromedp.SendKeys(chromedp.CSS("#create-name"), "Web widget"),
		chromedp.Click(chromedp.CSS("#create-key_type-public")),
		chromedp.WaitVisible(chromedp.CSS("#create-add-origin")),
		chromedp.Click(chromedp.CSS("#create-add-origin")),
		chromedp.WaitNotVisible(chromedp.CSS("#create-add-origin")),
		chromedp.SendKeys(chromedp.CSS("#create-allowed_assistants"), "asst-demo"),
	)
	assert.Equal(t, srv.URL, b.value("#create-allowed_origins"), "Add this site added the page's origin")
	b.shot("create-filled")
	b.run(
		chromedp.Click(chromedp.CSS("#create-submit")),
		chromedp.WaitVisible(chromedp.CSS("#value-dialog")),
		chromedp.WaitNotVisible(chromedp.CSS("#create-dialog")),
	)
	ks := aliceKeys()
	require.Len(t, ks, 1)
	k := ks[0]
	assert.Equal(t, apikeys.Public, k.Type)
	assert.Equal(t, "Web widget", k.Name)
	assert.Equal(t, []string{srv.URL}, k.AllowedOrigins)
	assert.Equal(t, []string{"asst-demo"}, k.AllowedAssistants)
	v1 := b.value("#key-value")
	require.NotEmpty(t, v1)
	b.run(chromedp.Click(chromedp.CSS("#copy-value")))
	b.poll(`document.getElementById("copy-status").textContent === "Copied"`, "the copy was not confirmed")
	clip, err := browsertest.ReadClipboard(ctx)
	require.NoError(t, err)
	require.Equal(t, v1, clip, "the clipboard holds the key's value")
	b.shot("created-value-copied")
	b.run(
		chromedp.Click(chromedp.CSS("#value-done")),
		chromedp.WaitNotVisible(chromedp.CSS("#value-dialog")),
		chromedp.WaitVisible(chromedp.CSS(browsertest.KeyRow(k.ID))),
	)
	b.shot("created")

	// 3. The copied value, pasted into the web-call page: allowed.
	out := b.webCall(clip)
	requireStatus(t, 201, out)
	assert.Contains(t, out, `"assistant_id":"asst-demo"`)
	b.shot("webcall-allowed")

	// 4. Its origins changed to another site's only: the same call from
	// this page is refused, naming the origin restriction.
	b.keysPage(k.ID)
	b.run(
		chromedp.Click(browsertest.KeyAction(k.ID, "edit")),
		chromedp.WaitVisible(chromedp.CSS("#edit-dialog")),
	)
	assert.Equal(t, srv.URL, b.value("#edit-allowed_origins"))
	b.run(browsertest.SetValue("#edit-allowed_origins", "https://elsewhere.example"))
	b.shot("edit-origins")
	b.run(
		chromedp.Click(chromedp.CSS("#edit-submit")),
		chromedp.WaitNotVisible(chromedp.CSS("#edit-dialog")),
	)
	got, err := m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://elsewhere.example"}, got.AllowedOrigins)
	assert.Contains(t, b.text(browsertest.KeyRow(k.ID)), "https://elsewhere.example")
	b.shot("edited-origins")
	out = b.webCall(v1)
	requireStatus(t, 403, out)
	assert.Contains(t, out, `"restriction":"allowed_origins"`)
	b.shot("webcall-refused-origin")

	// 5. This page's origin back; disabled: 401; enabled again: allowed.
	b.keysPage(k.ID)
	b.run(
		chromedp.Click(browsertest.KeyAction(k.ID, "edit")),
		chromedp.WaitVisible(chromedp.CSS("#edit-dialog")),
		browsertest.SetValue("#edit-allowed_origins", srv.URL),
		chromedp.Click(chromedp.CSS("#edit-submit")),
		chromedp.WaitNotVisible(chromedp.CSS("#edit-dialog")),
	)
	got, err = m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{srv.URL}, got.AllowedOrigins)
	b.run(
		chromedp.Click(browsertest.KeyAction(k.ID, "disable")),
		chromedp.WaitVisible(chromedp.CSS(browsertest.KeyRow(k.ID)+`[data-enabled="false"] button[data-action="enable"]`)),
	)
	got, err = m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	b.shot("disabled")
	out = b.webCall(v1)
	requireStatus(t, 401, out)
	b.shot("webcall-disabled")
	b.keysPage(k.ID)
	b.run(
		chromedp.Click(browsertest.KeyAction(k.ID, "enable")),
		chromedp.WaitVisible(chromedp.CSS(browsertest.KeyRow(k.ID)+`[data-enabled="true"] button[data-action="disable"]`)),
	)
	got, err = m.Get(bg, "alice", k.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled)
	b.shot("enabled")
	out = b.webCall(v1)
	requireStatus(t, 201, out)
	b.shot("webcall-enabled")

	// 6. Rotated with no grace: a new value; the old one is refused at
	// once, the new one allowed.
	b.keysPage(k.ID)
	b.run(
		chromedp.Click(browsertest.KeyAction(k.ID, "rotate")),
		chromedp.WaitVisible(chromedp.CSS("#rotate-dialog")),
		browsertest.SetValue("#rotate-grace", "0"),
	)
	assert.Contains(t, b.text("#rotate-dialog"), "Web widget")
	b.shot("rotate")
	b.run(
		chromedp.Click(chromedp.CSS("#rotate-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#value-dialog")),
	)
	v2 := b.value("#key-value")
	require.NotEmpty(t, v2)
	require.NotEqual(t, v1, v2)
	ver, err := m.Verify(bg, v2)
	require.NoError(t, err)
	require.True(t, ver.Valid, "the rotated value does not verify: %s", ver.Reason)
	successor := ver.Key.ID
	assert.Equal(t, []string{srv.URL}, ver.Key.AllowedOrigins, "the new key keeps the restrictions")
	ver, err = m.Verify(bg, v1)
	require.NoError(t, err)
	assert.False(t, ver.Valid, "the old value still verifies after a rotation with no grace")
	b.shot("rotated-value")
	b.run(
		chromedp.Click(chromedp.CSS("#value-done")),
		chromedp.WaitNotVisible(chromedp.CSS("#value-dialog")),
		chromedp.WaitVisible(chromedp.CSS(browsertest.KeyRow(successor))),
		// With no grace the old key is deleted, its row with it.
		chromedp.WaitNotPresent(chromedp.CSS(browsertest.KeyRow(k.ID))),
	)
	_, err = m.Get(bg, "alice", k.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound, "the old key after a rotation with no grace")
	b.shot("rotated")
	out = b.webCall(v1)
	requireStatus(t, 401, out)
	b.shot("webcall-old-value")
	out = b.webCall(v2)
	requireStatus(t, 201, out)
	b.shot("webcall-new-value")

	// 7. Deleted, confirmed: the row goes, and so do the key and its calls.
	b.keysPage(successor)
	b.run(
		chromedp.Click(browsertest.KeyAction(successor, "delete")),
		chromedp.WaitVisible(chromedp.CSS("#delete-dialog")),
	)
	assert.Contains(t, b.text("#delete-name"), "Web widget")
	b.shot("delete")
	b.run(
		chromedp.Click(chromedp.CSS("#delete-confirm")),
		chromedp.WaitNotVisible(chromedp.CSS("#delete-dialog")),
		chromedp.WaitNotPresent(chromedp.CSS(browsertest.KeyRow(successor))),
	)
	b.poll(`document.getElementById("status").textContent.startsWith("Deleted")`, "the deletion was not announced")
	_, err = m.Get(bg, "alice", successor)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	b.shot("deleted")
	out = b.webCall(v2)
	requireStatus(t, 401, out)
	b.shot("webcall-deleted")

	// Nothing but the refused calls was reported so far (browsertest
	// checks again at cleanup, CSP violations included).
	v, err := browsertest.CSPViolations(ctx)
	require.NoError(t, err)
	assert.Empty(t, v)
	// Exactly the refused calls: one 403, three 401 (the console's messages
	// reach browsertest on their own goroutine: wait, bounded, for four).
	assert.Eventually(t, func() bool { return len(browsertest.Errors(ctx)) >= 4 }, flowPoll, 20*time.Millisecond)
	var refused []string
	for _, e := range browsertest.Errors(ctx) {
		t.Logf("allowed console error: %s", e)
		_, status, _ := strings.Cut(e, "status of ")
		status, _, _ = strings.Cut(status, " ")
		refused = append(refused, status)
	}
	assert.Equal(t, []string{"403", "401", "401", "401"}, refused, "the console errors")
}
