package redisstore

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func storeOn(t *testing.T, b backend) *Store {
	t.Helper()
	s, _, _ := newStore(t, b, nil)
	return s
}

// Regression tests of the security review of issue 12: the enabled
// switch, scopes and allowed_ips were fields of apikeys.Key that the Redis
// store wrote no hash field for (appendFields), so on Redis every one of
// these restrictions silently disappeared when the key was stored, and
// each failed open.

// TestRedisKeepsRestrictions: what Create stored is what Get reads.
func TestRedisKeepsRestrictions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		m, err := apikeys.New(storeOn(t, b), nil)
		require.NoError(t, err)
		nk, err := m.Create(t.Context(), apikeys.CreateParams{
			Type: apikeys.Private, Name: "restricted", UserID: "alice", Disabled: true,
			Scopes: []string{"calls:read"}, AllowedIPs: []string{"203.0.113.0/24"},
		})
		require.NoError(t, err)
		k, err := m.Get(t.Context(), "alice", nk.ID)
		require.NoError(t, err)
		assert.True(t, k.Disabled, "disabled")
		assert.Equal(t, []string{"calls:read"}, k.Scopes, "scopes")
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, k.AllowedIPs, "allowed_ips")
	})
}

// TestRedisDisabledKeyRefused: a key created disabled, or disabled by
// Update (the operator's "switch it off now" after a leak), must not
// authorize.
func TestRedisDisabledKeyRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		m, err := apikeys.New(storeOn(t, b), nil)
		require.NoError(t, err)
		created, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "off", UserID: "alice", Disabled: true})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), created.Value, apikeys.Request{})
		assert.ErrorIs(t, err, apikeys.ErrKeyDisabled, "created disabled")

		leaked, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "leaked", UserID: "alice"})
		require.NoError(t, err)
		_, err = m.Update(t.Context(), "alice", leaked.ID, apikeys.UpdateParams{Disabled: new(true)})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), leaked.Value, apikeys.Request{})
		assert.ErrorIs(t, err, apikeys.ErrKeyDisabled, "disabled by Update")
	})
}

// TestRedisScopedKeyCannotManage: a key scoped to calls:read must not
// pass a route that needs calls:write, nor manage keys.
func TestRedisScopedKeyCannotManage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		m, err := apikeys.New(storeOn(t, b), nil)
		require.NoError(t, err)
		reader, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "reader", UserID: "alice", Scopes: []string{"calls:read"}})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), reader.Value, apikeys.Request{Scopes: []string{"calls:write"}})
		assert.ErrorIs(t, err, apikeys.ErrInsufficientScope, "route needs calls:write")

		ctx := apikeys.NewContext(t.Context(), reader.Key)
		_, err = m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "mine now", UserID: "alice"})
		assert.ErrorIs(t, err, apikeys.ErrInsufficientScope, "a calls:read key creates an unrestricted key")
	})
}

// TestRedisAllowedIPsEnforced: a key limited to 203.0.113.0/24 refuses
// a request from elsewhere.
func TestRedisAllowedIPsEnforced(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		m, err := apikeys.New(storeOn(t, b), nil)
		require.NoError(t, err)
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "office", UserID: "alice", AllowedIPs: []string{"203.0.113.0/24"}})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{ClientIP: netip.MustParseAddr("198.51.100.1")})
		assert.ErrorIs(t, err, apikeys.ErrIPNotAllowed)
	})
}

// TestRestrictionFieldsFormat: the hash fields hold what the package doc
// says, and an Update rewrites (and so can clear) each of them.
func TestRestrictionFieldsFormat(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		nk, err := m.Create(t.Context(), apikeys.CreateParams{
			Type: apikeys.Private, Name: "format", UserID: "alice", Disabled: true,
			Scopes:     []string{"calls:read", "api_keys:*"},
			AllowedIPs: []string{"203.0.113.7", "2001:DB8::/32", "::ffff:10.1.2.3/104"},
		})
		require.NoError(t, err)
		fields := func() map[string]string {
			t.Helper()
			h, err := rdb.HMGet(t.Context(), s.recordKey(nk.ID.String()), fScopes, fAllowedIPs, fDisabled).Result()
			require.NoError(t, err)
			out := map[string]string{}
			for i, f := range []string{fScopes, fAllowedIPs, fDisabled} {
				v, ok := h[i].(string)
				require.True(t, ok, "field %s is %T", f, h[i])
				out[f] = v
			}
			return out
		}
		assert.Equal(t, map[string]string{
			fScopes:     `["calls:read","api_keys:*"]`,
			fAllowedIPs: `["203.0.113.7/32","2001:db8::/32","10.0.0.0/8"]`,
			fDisabled:   "1",
		}, fields(), "after Create")

		_, err = m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{
			Scopes: &[]string{}, AllowedIPs: &[]string{}, Disabled: new(false),
		})
		require.NoError(t, err)
		assert.Equal(t, map[string]string{fScopes: "[]", fAllowedIPs: "[]", fDisabled: "0"}, fields(), "after clearing Update")
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
		require.NoError(t, err, "the key, enabled and unrestricted again")
	})
}

// TestMalformedRestrictionsFailClosed: a scopes, allowed_ips or disabled
// field that does not decode makes the record an error for Get and List,
// never apikeys.ErrNotFound and never a record without the restriction,
// and Authorize refuses the key with a *apikeys.StoreError.
func TestMalformedRestrictionsFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field, value string
	}{
		{fScopes, ""},
		{fScopes, "null"},
		{fScopes, "["},
		{fScopes, `"calls:read"`},
		{fScopes, `{"calls":"read"}`},
		{fScopes, "[1]"},
		{fAllowedIPs, ""},
		{fAllowedIPs, "null"},
		{fAllowedIPs, `["203.0.113.0/24"`},
		{fAllowedIPs, `["anywhere"]`},
		{fAllowedIPs, `[""]`},
		{fAllowedIPs, `["203.0.113.7"]`},         // not a prefix
		{fAllowedIPs, `["10.0.0.1/8"]`},          // not masked
		{fAllowedIPs, `["::ffff:10.0.0.0/104"]`}, // IPv4-mapped
		{fAllowedIPs, `["2001:DB8::/32"]`},       // not canonical text
		{fAllowedIPs, `["fe80::1%eth0/128"]`},    // a zone
		{fAllowedIPs, `["10.0.0.0/33"]`},
		{fAllowedIPs, `[10]`},
		{fDisabled, ""},
		{fDisabled, "true"},
		{fDisabled, "false"},
		{fDisabled, "2"},
		{fDisabled, " 0"},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for _, tt := range tests {
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "corrupt", UserID: "mallory"})
			require.NoError(t, err)
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err, "the key before its %s field is spoiled", tt.field)
			require.NoError(t, rdb.HSet(t.Context(), s.recordKey(nk.ID.String()), tt.field, tt.value).Err())

			name := tt.field + "=" + tt.value
			_, err = s.Get(t.Context(), nk.ID)
			if assert.Error(t, err, "Get with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Get with %s", name)
				assert.ErrorContains(t, err, "field "+tt.field, "Get with %s", name)
			}
			_, err = s.List(t.Context(), "mallory", apikeys.ListQuery{Limit: 100})
			if assert.Error(t, err, "List with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "List with %s", name)
			}
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
			var se *apikeys.StoreError
			assert.True(t, errors.As(err, &se), "Authorize with %s = %v, want a *apikeys.StoreError", name, err)
			// Out of the way of the next case's List.
			require.NoError(t, rdb.Del(t.Context(), s.recordKey(nk.ID.String())).Err())
		}
	})
}
