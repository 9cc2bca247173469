package middleware_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// TestDefaultResourceFailsClosed: a middleware built without Resource names
// no assistant, so a key restricted to assistants is refused on every route
// (issue 10: /assistants/a2/calls answered 200 for a key limited to a1).
func TestDefaultResourceFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mw, err := middleware.New(f.m, nil)
	require.NoError(t, err)
	h := mw.Handler(echo)
	w := do(h, "POST", "/assistants/a2/calls", with(bearer(f.web.Value), "Origin", "https://allowed.example.com"))
	require.Equal(t, 403, w.Code, w.Body.String())
	body := decode(t, w)
	assert.Equal(t, "allowed_assistants", body["restriction"])
	assert.Contains(t, body["error"], "named none")
	w = do(h, "POST", "/anything", bearer(f.open.Value))
	assert.Equal(t, 200, w.Code, "unrestricted keys are unaffected")
}

// TestErrorFunc: rendering is replaceable; the protocol headers are set
// before it runs, and every invalid key reaches it as the same Refusal.
func TestErrorFunc(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var got []middleware.Refusal
	_, h := newHandler(t, f.m, &middleware.Config{ErrorFunc: func(w http.ResponseWriter, _ *http.Request, ref *middleware.Refusal) {
		got = append(got, *ref)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(ref.Status)
		_, _ = io.WriteString(w, "custom: "+ref.Message)
	}}, echo)
	tests := []struct {
		name        string
		hdr         http.Header
		status      int
		restriction string
		err         error
		header      string // a header the middleware must have set
	}{
		{"no key", nil, 401, "", nil, "WWW-Authenticate"},
		{"deleted key", bearer(f.deleted.Value), 401, "", apikeys.ErrInvalidKey, "WWW-Authenticate"},
		{"expired key", bearer(f.expired.Value), 401, "", apikeys.ErrInvalidKey, "WWW-Authenticate"},
		{"origin", with(bearer(f.web.Value), "Origin", "https://other.example"), 403, "allowed_origins", apikeys.ErrOriginNotAllowed, "Vary"},
		{"private key in a browser", with(bearer(f.private.Value), "Origin", "https://other.example"), 403, "key_type", apikeys.ErrPrivateKeyInBrowser, "Vary"},
		{"both headers", with(bearer(f.open.Value), "X-API-Key", f.open.Value), 400, "", nil, "Vary"},
	}
	for _, tt := range tests { // sequential: got is shared
		got = nil
		w := do(h, "POST", "/call", tt.hdr)
		require.Equal(t, tt.status, w.Code, tt.name)
		assert.Equal(t, "custom: "+got[0].Message, w.Body.String(), tt.name)
		assert.NotEmpty(t, w.Header().Get(tt.header), tt.name)
		require.Len(t, got, 1, tt.name)
		assert.Equal(t, tt.restriction, got[0].Restriction, tt.name)
		if tt.err == nil {
			assert.NoError(t, got[0].Err, tt.name)
		} else {
			assert.ErrorIs(t, got[0].Err, tt.err, tt.name)
		}
	}
}

// TestClosedManagerIs503: a closed Manager authorizes nothing, and says so
// as a 503, not as an invalid key.
func TestClosedManagerIs503(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	mw, err := middleware.New(m, &middleware.Config{ErrorLog: discardLog()})
	require.NoError(t, err)
	require.NoError(t, m.Close(t.Context()))
	w := do(mw.Handler(echo), "GET", "/", bearer(nk.Value))
	assert.Equal(t, 503, w.Code)
	assert.Empty(t, w.Header().Get("WWW-Authenticate"), "not blamed on the key")
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
