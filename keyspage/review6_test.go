package keyspage_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/keyspage"
)

// Review 6, finding 1 (Low–Medium, information disclosure): the error that
// Config.Owner returns is sent verbatim to the client. keyspage hands
// Config.Owner to httpapi, whose withOwner answers 401 with err.Error() as
// the message. Owner is the host's session lookup: its errors are the host's
// internals (a session store's address, a decoding error quoting the cookie,
// a database error), and anyone, signed in or not, can call the API and read
// them. The page itself (GET {Prefix}/) already answers with a fixed text;
// the API should too, e.g. "sign in to manage your API keys", and log the
// error to ErrorLog instead.
func TestReview6OwnerErrorNotDisclosed(t *testing.T) {
	t.Parallel()
	const secret = "redis: dial tcp 10.20.30.40:6379: connection refused (session s3cr3t-session-id)"
	owner := func(*http.Request) (httpapi.Owner, error) { return httpapi.Owner{}, errors.New(secret) }
	_, h := newPage(t, &keyspage.Config{Prefix: prefix, Owner: owner})
	for _, tt := range []struct{ method, target, body string }{
		{"GET", prefix + "/api/api_keys", ""},
		{"POST", prefix + "/api/api_keys", `{"api_key":{"name":"x","key_type":"private"}}`},
		{"GET", prefix + "/api/api_keys/0190f0f0-0000-7000-8000-000000000000", ""},
		{"POST", prefix + "/api/api_keys/tokens", ""},
	} {
		w := do(t, h, tt.method, tt.target, "", tt.body, "Content-Type", "application/json") // past the JSON check
		assert.Equal(t, http.StatusUnauthorized, w.Code, "%s %s: %s", tt.method, tt.target, w.Body.String())
		assert.NotContains(t, w.Body.String(), "10.20.30.40", "%s %s: the Owner's error reaches the client", tt.method, tt.target)
		assert.NotContains(t, w.Body.String(), "s3cr3t-session-id", "%s %s: the Owner's error reaches the client", tt.method, tt.target)
	}
}

// Review 6, finding 2 (Low, CSRF defence in depth): the session-authorized
// API accepts request bodies of any Content-Type, and rotate accepts an
// empty body (grace period 0: the old key stops at once). The only CSRF
// defence is net/http.CrossOriginProtection, which by design lets through
// any request that has neither Sec-Fetch-Site nor Origin. A browser that
// sends neither on a cross-site form post (older browsers; Sec-Fetch-Site is
// also only sent to secure origins) lets a hostile site
//
//   - create a key with <form enctype="text/plain"> whose single field is
//     named {"api_key":{"key_type":"public","name":" and valued "}}, and
//   - rotate a key with grace 0 with an empty <form method="post">: an
//     instant outage of a production key,
//
// both "simple requests" that need no CORS preflight. The page's script
// always sends application/json; requiring it (415 otherwise, and a JSON
// content type on rotate even when the body is empty) forces any
// cross-origin attempt through a preflight the server never grants.
func TestReview6APIRequiresJSONContentType(t *testing.T) {
	t.Parallel()
	m, h := newPage(t, nil)
	ctx := context.Background()
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "prod", UserID: "alice"})
	require.NoError(t, err)
	nk2, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "prod 2", UserID: "alice"})
	require.NoError(t, err)

	// The bodies the forms above produce. No Sec-Fetch-Site, no Origin: an
	// old browser's cross-site form post, with the session cookie.
	plain := `{"api_key":{"key_type":"public","name":"=` + `"}}`
	for _, tt := range []struct{ name, target, ctype, body string }{
		{"create, text/plain form", prefix + "/api/api_keys", "text/plain", plain},
		{"create, urlencoded form", prefix + "/api/api_keys", "application/x-www-form-urlencoded", `{"api_key":{"key_type":"public","name":"x"}}`},
		{"rotate, empty urlencoded form", prefix + "/api/api_keys/" + nk.ID.String() + "/rotate", "application/x-www-form-urlencoded", ""},
		{"rotate, empty text/plain form", prefix + "/api/api_keys/" + nk2.ID.String() + "/rotate", "text/plain", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, "POST", tt.target, "alice", tt.body, "Sec-Fetch-Site", "", "Content-Type", tt.ctype)
			assert.True(t, w.Code >= 400 && w.Code < 500, "a %s POST was accepted: %d %s", tt.ctype, w.Code, w.Body.String())
		})
	}
	page, err := m.List(ctx, "alice", apikeys.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Keys, 2, "a form post created a key")
	for _, k := range page.Keys {
		assert.Contains(t, []any{nk.ID, nk2.ID}, k.ID)
		assert.Zero(t, k.SuccessorID, "a form post rotated %s", k.Name)
	}

	// The page's own requests still work.
	w := do(t, h, "POST", prefix+"/api/api_keys/"+nk.ID.String()+"/rotate", "alice", `{"grace_period_seconds":0}`)
	assert.Equal(t, http.StatusCreated, w.Code, w.Body.String())
}
