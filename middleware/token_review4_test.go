package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// TestReview4TokenOnlyAsBearer: a browser token authorizes as
// Authorization: Bearer only; as X-API-Key, forged, or expired it gets the
// very bytes of an invalid key; on a private route it is a public key.
func TestReview4TokenOnlyAsBearer(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return now }, TokenKeys: []apikeys.TokenKey{tk}, LastUsedInterval: -1})
	require.NoError(t, err)
	parent, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "alice"})
	require.NoError(t, err)
	tok, err := m.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: parent.ID})
	require.NoError(t, err)
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := middleware.Key(r)
		if !k.IsToken() {
			w.WriteHeader(http.StatusTeapot)
		}
	})
	serve := func(h http.Handler, hdr http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header = hdr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	invalid := serve(mw.Handler(ok), http.Header{"X-Api-Key": {"ak_pk_nope"}})
	require.Equal(t, http.StatusUnauthorized, invalid.Code)
	// A signature character changed, always to another one (a fixed
	// replacement would leave one token in 256 as it was).
	b := []byte(tok.Token)
	b[len(b)-10] = map[bool]byte{true: 'B', false: 'A'}[b[len(b)-10] == 'A']
	forged := string(b)
	tests := []struct {
		name    string
		h       http.Handler
		hdr     http.Header
		want    int
		invalid bool
	}{
		{"bearer", mw.Handler(ok), http.Header{"Authorization": {"Bearer " + tok.Token}}, http.StatusOK, false},
		{"x-api-key", mw.Handler(ok), http.Header{"X-Api-Key": {tok.Token}}, http.StatusUnauthorized, true},
		{"forged bearer", mw.Handler(ok), http.Header{"Authorization": {"Bearer " + forged}}, http.StatusUnauthorized, true},
		{"private route", mw.RequirePrivate(ok), http.Header{"Authorization": {"Bearer " + tok.Token}}, http.StatusForbidden, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := serve(tt.h, tt.hdr)
			assert.Equal(t, tt.want, w.Code)
			if tt.invalid {
				assert.Equal(t, invalid.Body.String(), w.Body.String())
				assert.Equal(t, invalid.Header(), w.Header())
			}
		})
	}
}
