package redisstore

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// TestReview2RestrictionNullWithSpaceFailsOpen: optionalList refuses the
// exact text "null" but hands anything else to decodeList, and
// json.Unmarshal takes " null", "null\n" and "\tnull " for a nil slice
// without an error. So a scopes or allowed_ips field holding JSON null
// with whitespace reads as "no scopes" / "no addresses": the scoped key
// passes a route needing any scope, the address-limited key any address.
// The README promises "A field that does not decode makes the record an
// error (Authorize fails closed), never a key without the restriction".
func TestReview2RestrictionNullWithSpaceFailsOpen(t *testing.T) {
	t.Parallel()
	tests := []struct{ field, value string }{
		{fScopes, " null"},
		{fScopes, "null\n"},
		{fAllowedIPs, "\tnull "},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for _, tt := range tests {
			nk, err := m.Create(t.Context(), apikeys.CreateParams{
				Type: apikeys.Private, Name: "restricted", UserID: "mallory",
				Scopes: []string{"calls:read"}, AllowedIPs: []string{"203.0.113.0/24"},
			})
			require.NoError(t, err)
			require.NoError(t, rdb.HSet(t.Context(), s.recordKey(nk.ID.String()), tt.field, tt.value).Err())
			name := tt.field + "=" + tt.value
			rec, err := s.Get(t.Context(), nk.ID)
			assert.Error(t, err, "Get with %q read scopes %q, allowed_ips %v", name, rec.Scopes, rec.AllowedIPs)
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
			var se *apikeys.StoreError
			assert.True(t, errors.As(err, &se), "Authorize with %q = %v, want a *apikeys.StoreError", name, err)
			require.NoError(t, rdb.Del(t.Context(), s.recordKey(nk.ID.String())).Err())
		}
	})
}

// TestReview2OldListFieldNullFailsOpen: the origins and assistants fields
// go through decoder.list, for which "", "null" (and " null") are an
// empty list: a public key limited to one origin, whose field holds any
// of these, works from every web page (and likewise for assistants),
// where the newer restriction fields are errors for the same values.
func TestReview2OldListFieldNullFailsOpen(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for _, field := range []string{fOrigins, fAssistants} {
			for _, value := range []string{"", "null"} {
				nk, err := m.Create(t.Context(), apikeys.CreateParams{
					Type: apikeys.Public, Name: "web", UserID: "mallory",
					AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst-1"},
				})
				require.NoError(t, err)
				require.NoError(t, rdb.HSet(t.Context(), s.recordKey(nk.ID.String()), field, value).Err())
				_, err = s.Get(t.Context(), nk.ID)
				assert.Error(t, err, "Get with %s=%q", field, value)
				require.NoError(t, rdb.Del(t.Context(), s.recordKey(nk.ID.String())).Err())
			}
		}
	})
}
