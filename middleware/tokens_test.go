package middleware_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// tokenFixture is a Manager with token keys, a private key of alice with
// no restrictions, and a token minted from it for one origin and one
// assistant.
type tokenFixture struct {
	m      *apikeys.Manager
	parent apikeys.NewKey
	token  string
	clock  *atomic.Int64 // Unix seconds
	h      http.Handler
}

const tokenOrigin = "https://app.example.com"

func newTokenFixture(t *testing.T) *tokenFixture {
	t.Helper()
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	f := &tokenFixture{clock: new(atomic.Int64)}
	f.clock.Store(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).Unix())
	m, err := apikeys.New(memstore.New(), &apikeys.Config{
		TokenKeys: []apikeys.TokenKey{tk},
		Now:       func() time.Time { return time.Unix(f.clock.Load(), 0) },
	})
	require.NoError(t, err)
	f.m = m
	f.parent, err = m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "alice", TransientAssistant: true})
	require.NoError(t, err)
	tok, err := m.MintToken(t.Context(), "alice", apikeys.TokenParams{
		KeyID:              f.parent.ID,
		AllowedOrigins:     &[]string{tokenOrigin},
		AllowedAssistants:  &[]string{"asst-1"},
		TransientAssistant: new(false), // the parent allows them
		TTL:                10 * time.Minute,
	})
	require.NoError(t, err)
	f.token = tok.Token
	_, f.h = newHandler(t, m, nil, tokenEcho)
	return f
}

// tokenEcho answers 200 with "token <id>" or "key <id>".
var tokenEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	k, ok := middleware.Key(r)
	if !ok {
		http.Error(w, "no key in context", http.StatusInternalServerError)
		return
	}
	kind := "key"
	if k.IsToken() {
		kind = "token"
	}
	_, _ = io.WriteString(w, kind+" "+k.ID.String())
})

func TestTokenBearer(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	tests := []struct {
		name        string
		path        string
		hdr         http.Header
		status      int
		restriction string
		acao        string
	}{
		{"its origin and assistant", "/call", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-1"), 200, "", tokenOrigin},
		{"other assistant: readable", "/call", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-2"), 403, "allowed_assistants", tokenOrigin},
		{"no assistant named", "/call", with(bearer(f.token), "Origin", tokenOrigin), 403, "allowed_assistants", tokenOrigin},
		{"transient, which the token does not allow", "/call", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-1", "X-Transient", "1"), 403, "transient_assistant", tokenOrigin},
		{"other origin: unreadable", "/call", with(bearer(f.token), "Origin", "https://evil.example.com", "X-Assistant", "asst-1"), 403, "allowed_origins", ""},
		{"no origin", "/call", with(bearer(f.token), "X-Assistant", "asst-1"), 403, "allowed_origins", ""},
		{"private route", "/admin", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-1"), 403, "key_type", tokenOrigin},
		{"lower-case scheme", "/call", with(http.Header{"Authorization": {"bearer " + f.token}}, "Origin", tokenOrigin, "X-Assistant", "asst-1"), 200, "", tokenOrigin},
		{"the parent key itself still works on the server", "/admin", bearer(f.parent.Value), 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := do(f.h, "POST", tt.path, tt.hdr)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Contains(t, w.Header().Values("Vary"), "Origin")
			if tt.status == 200 || tt.acao == "" {
				// Refusals readable from the token's origin: see
				// TestTokenRefusalReadableFromItsOrigin.
				assert.Equal(t, tt.acao, w.Header().Get("Access-Control-Allow-Origin"))
			}
			assert.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"))
			if tt.status == 200 {
				want := "token "
				if tt.path == "/admin" {
					want = "key "
				}
				assert.Equal(t, want+f.parent.ID.String(), w.Body.String(), "the handler sees the parent's id and whether it is a token")
				assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
				return
			}
			body := decode(t, w)
			assert.Equal(t, tt.restriction, body["restriction"])
			if tt.restriction == "key_type" {
				assert.Equal(t, "public", body["key_type"], "a token acts as a public key")
				assert.Equal(t, "private", body["required_key_type"])
			}
		})
	}
}

// tamper returns the token with its payload's JSON changed by edit and
// re-encoded, the signature kept.
func tamper(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	edit(claims)
	raw, err = json.Marshal(claims)
	require.NoError(t, err)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// TestBadTokensLikeInvalidKeys: every token that does not work gets the
// bytes an invalid key gets, from a browser origin too.
func TestBadTokensLikeInvalidKeys(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	hdr := func(h http.Header) http.Header { return with(h, "Origin", tokenOrigin, "X-Assistant", "asst-1") }

	// The reference: a well-formed key that does not exist.
	gone, err := f.m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "gone", UserID: "alice"})
	require.NoError(t, err)
	_, err = f.m.Delete(t.Context(), "alice", gone.ID)
	require.NoError(t, err)
	ref := do(f.h, "POST", "/call", hdr(bearer(gone.Value)))
	require.Equal(t, 401, ref.Code)

	sig := []byte(f.token)
	mid := strings.LastIndexByte(f.token, '.') + 20
	sig[mid] ^= 'A' ^ 'B' // a bit of the signature, not a padding bit
	if sig[mid] == f.token[mid] {
		t.Fatal("signature not changed")
	}
	cases := map[string]http.Header{
		"token as X-API-Key": hdr(http.Header{"X-Api-Key": {f.token}}),
		"widened origins": hdr(bearer(tamper(t, f.token, func(c map[string]any) {
			c["origins"] = []string{tokenOrigin, "https://evil.example.com"}
		}))),
		"later expiry":      hdr(bearer(tamper(t, f.token, func(c map[string]any) { c["exp"] = c["exp"].(float64) + 3600 }))),
		"changed signature": hdr(bearer(string(sig))),
		"no signature":      hdr(bearer(f.token[:strings.LastIndexByte(f.token, '.')+1])),
		"three dots":        hdr(bearer("a.b.c")),
	}
	for name, h := range cases {
		w := do(f.h, "POST", "/call", h)
		assert.Equal(t, ref.Code, w.Code, name)
		assert.Equal(t, ref.Body.String(), w.Body.String(), name)
		assert.Equal(t, ref.Header().Get("WWW-Authenticate"), w.Header().Get("WWW-Authenticate"), name)
		assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), name)
	}

	// Still good before the following.
	require.Equal(t, 200, do(f.h, "POST", "/call", hdr(bearer(f.token))).Code)

	// Expired: 10 minutes later, exactly.
	f.clock.Add(600)
	w := do(f.h, "POST", "/call", hdr(bearer(f.token)))
	assert.Equal(t, ref.Body.String(), w.Body.String(), "expired")
	f.clock.Add(-600)
	require.Equal(t, 200, do(f.h, "POST", "/call", hdr(bearer(f.token))).Code)

	// The parent disabled, then deleted.
	disabled := true
	_, err = f.m.Update(t.Context(), "alice", f.parent.ID, apikeys.UpdateParams{Disabled: &disabled})
	require.NoError(t, err)
	w = do(f.h, "POST", "/call", hdr(bearer(f.token)))
	assert.Equal(t, ref.Body.String(), w.Body.String(), "parent disabled")
	disabled = false
	_, err = f.m.Update(t.Context(), "alice", f.parent.ID, apikeys.UpdateParams{Disabled: &disabled})
	require.NoError(t, err)
	require.Equal(t, 200, do(f.h, "POST", "/call", hdr(bearer(f.token))).Code)
	_, err = f.m.Delete(t.Context(), "alice", f.parent.ID)
	require.NoError(t, err)
	w = do(f.h, "POST", "/call", hdr(bearer(f.token)))
	assert.Equal(t, ref.Body.String(), w.Body.String(), "parent deleted")
	assert.Equal(t, ref.Header().Get("WWW-Authenticate"), w.Header().Get("WWW-Authenticate"))
}

// TestTokenOnManagerWithoutTokenKeys: a Manager without TokenKeys refuses
// any token like an invalid key.
func TestTokenOnManagerWithoutTokenKeys(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	_, h := newHandler(t, m, nil, tokenEcho)
	ref := do(h, "GET", "/call", bearer("ak_pk_"+strings.Repeat("a", 72)))
	w := do(h, "GET", "/call", bearer(f.token))
	assert.Equal(t, 401, w.Code)
	assert.Equal(t, ref.Body.String(), w.Body.String())
}

// TestTokenPreflight: a page calls with its token after a preflight,
// which needs no key.
func TestTokenPreflight(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	r := httptest.NewRequest("OPTIONS", "/call", nil)
	r.Header.Set("Origin", tokenOrigin)
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	assert.Equal(t, 204, w.Code)
	assert.Equal(t, tokenOrigin, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), "Authorization")
}

// TestTokenRefusalReadableFromItsOrigin: a token refused for another
// reason than its origin is readable by a page on that origin, as a
// public key's refusal is ("public key on private route from its origin:
// readable" in TestMiddleware): Authorize documents that a refused valid
// key comes back with the error "for logging, CORS decisions and
// rate-limit headers".
//
// It fails on the core as of issue 14's first commit: authorizeToken
// returns Key{} with every refusal of tokenKey (and of the spend path),
// so the middleware cannot tell that the token allows the origin. A
// refused token should come back as its key, as tokenKey builds it, except
// for ErrInvalidKey.
func TestTokenRefusalReadableFromItsOrigin(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	for name, tt := range map[string]struct {
		path        string
		hdr         http.Header
		restriction string
	}{
		"other assistant": {"/call", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-2"), "allowed_assistants"},
		"transient":       {"/call", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-1", "X-Transient", "1"), "transient_assistant"},
		"private route":   {"/admin", with(bearer(f.token), "Origin", tokenOrigin, "X-Assistant", "asst-1"), "key_type"},
	} {
		w := do(f.h, "POST", tt.path, tt.hdr)
		require.Equal(t, 403, w.Code, name)
		assert.Equal(t, tt.restriction, decode(t, w)["restriction"], name)
		assert.Equal(t, tokenOrigin, w.Header().Get("Access-Control-Allow-Origin"), name)
	}
	k, err := f.m.Authorize(t.Context(), f.token, apikeys.Request{Origin: tokenOrigin, AssistantID: "asst-2"})
	require.ErrorIs(t, err, apikeys.ErrAssistantNotAllowed)
	assert.Equal(t, f.parent.ID, k.ID, "the refused token's key")
	assert.True(t, k.IsToken())
}
