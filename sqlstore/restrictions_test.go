package sqlstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/sqlstore"
)

// Regression tests of the security review of issue 12: the enabled
// switch, scopes and allowed_ips were fields of apikeys.Key that the SQL
// store had no column for, so on SQL every one of these restrictions
// silently disappeared when the key was stored, and each failed open.
// Schema version 4 adds the columns.

// TestSQLKeepsRestrictions: what Create stored is what Get reads.
func TestSQLKeepsRestrictions(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		m, err := apikeys.New(migratedStore(t, db.DB), nil)
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

// TestSQLDisabledKeyRefused: a key created disabled, or disabled by
// Update (the operator's "switch it off now" after a leak), must not
// authorize.
func TestSQLDisabledKeyRefused(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		m, err := apikeys.New(migratedStore(t, db.DB), nil)
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

// TestSQLScopedKeyCannotManage: a key scoped to calls:read must not
// pass a route that needs calls:write, nor manage keys.
func TestSQLScopedKeyCannotManage(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		m, err := apikeys.New(migratedStore(t, db.DB), nil)
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

// TestSQLAllowedIPsEnforced: a key limited to 203.0.113.0/24 refuses
// a request from elsewhere.
func TestSQLAllowedIPsEnforced(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		m, err := apikeys.New(migratedStore(t, db.DB), nil)
		require.NoError(t, err)
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "office", UserID: "alice", AllowedIPs: []string{"203.0.113.0/24"}})
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{ClientIP: netip.MustParseAddr("198.51.100.1")})
		assert.ErrorIs(t, err, apikeys.ErrIPNotAllowed)
	})
}

// TestRestrictionColumns: the columns hold what the package doc says (JSON
// arrays of strings, the addresses as canonical prefixes; a boolean), and
// an Update rewrites, and so can clear, each of them.
func TestRestrictionColumns(t *testing.T) {
	t.Parallel()
	// The stored text of a column, whatever the database's type.
	asText := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "CAST(%s AS TEXT)",
		sqlstore.MySQL:    "CAST(%s AS CHAR)",
		sqlstore.SQLite:   "CAST(%s AS TEXT)",
	}
	enabledText := map[sqlstore.Dialect][2]string{ // false, true
		sqlstore.Postgres: {"false", "true"},
		sqlstore.MySQL:    {"0", "1"},
		sqlstore.SQLite:   {"0", "1"},
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		nk, err := m.Create(t.Context(), apikeys.CreateParams{
			Type: apikeys.Private, Name: "format", UserID: "alice", Disabled: true,
			Scopes:     []string{"calls:read", "api_keys:*"},
			AllowedIPs: []string{"203.0.113.7", "2001:DB8::/32", "::ffff:10.1.2.3/104"},
		})
		require.NoError(t, err)
		stored := func() (scopes, ips []string, disabled string) {
			t.Helper()
			f := asText[db.dialect]
			q := "SELECT " + fmt.Sprintf(f, "scopes") + ", " + fmt.Sprintf(f, "allowed_ips") + ", " + fmt.Sprintf(f, "disabled") +
				" FROM " + quote(db.dialect, s.Table()) + " WHERE id = " + ph(db.dialect, 1)
			var rawScopes, rawIPs string
			require.NoError(t, db.QueryRowxContext(ctx(t), q, nk.ID).Scan(&rawScopes, &rawIPs, &disabled))
			require.NoError(t, json.Unmarshal([]byte(rawScopes), &scopes), "scopes %q", rawScopes)
			require.NoError(t, json.Unmarshal([]byte(rawIPs), &ips), "allowed_ips %q", rawIPs)
			require.NotNil(t, scopes, "scopes %q is not an array", rawScopes)
			require.NotNil(t, ips, "allowed_ips %q is not an array", rawIPs)
			return scopes, ips, disabled
		}
		scopes, ips, disabled := stored()
		assert.Equal(t, []string{"calls:read", "api_keys:*"}, scopes)
		assert.Equal(t, []string{"203.0.113.7/32", "2001:db8::/32", "10.0.0.0/8"}, ips)
		assert.Equal(t, enabledText[db.dialect][1], disabled)

		_, err = m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{
			Scopes: &[]string{}, AllowedIPs: &[]string{}, Disabled: new(false),
		})
		require.NoError(t, err)
		scopes, ips, disabled = stored()
		assert.Empty(t, scopes)
		assert.Empty(t, ips)
		assert.Equal(t, enabledText[db.dialect][0], disabled)
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
		require.NoError(t, err, "the key, enabled and unrestricted again")
	})
}

// TestMalformedRestrictionsFailClosed: a scopes, allowed_ips or disabled
// value that does not decode makes the row an error for Get and List,
// never apikeys.ErrNotFound and never a record without the restriction,
// and Authorize refuses the key with a *apikeys.StoreError. Each database
// refuses some values by its column types (JSONB, JSON, BOOLEAN); the
// others are tried.
func TestMalformedRestrictionsFailClosed(t *testing.T) {
	t.Parallel()
	all := []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL, sqlstore.SQLite}
	tests := []struct {
		column string
		value  any
		on     []sqlstore.Dialect
	}{
		{"scopes", "null", all},
		{"scopes", `"calls:read"`, all},
		{"scopes", `{"calls": "read"}`, all},
		{"scopes", `[1]`, all},
		{"scopes", `[["calls:read"]]`, all},
		{"scopes", ``, []sqlstore.Dialect{sqlstore.SQLite}},
		{"scopes", `[`, []sqlstore.Dialect{sqlstore.SQLite}},
		{"allowed_ips", "null", all},
		{"allowed_ips", `{}`, all},
		{"allowed_ips", `["anywhere"]`, all},
		{"allowed_ips", `[""]`, all},
		{"allowed_ips", `["203.0.113.7"]`, all},         // not a prefix
		{"allowed_ips", `["10.0.0.1/8"]`, all},          // not masked
		{"allowed_ips", `["::ffff:10.0.0.0/104"]`, all}, // IPv4-mapped
		{"allowed_ips", `["2001:DB8::/32"]`, all},       // not canonical text
		{"allowed_ips", `["fe80::1%eth0/128"]`, all},    // a zone
		{"allowed_ips", `["10.0.0.0/33"]`, all},
		{"allowed_ips", `[10]`, all},
		{"allowed_ips", `203.0.113.0/24`, []sqlstore.Dialect{sqlstore.SQLite}},
		{"disabled", 2, []sqlstore.Dialect{sqlstore.MySQL, sqlstore.SQLite}},
		{"disabled", -1, []sqlstore.Dialect{sqlstore.MySQL, sqlstore.SQLite}},
		{"disabled", "yes", []sqlstore.Dialect{sqlstore.SQLite}},
		{"disabled", "", []sqlstore.Dialect{sqlstore.SQLite}},
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		n := 0
		for _, tt := range tests {
			if !slices.Contains(tt.on, db.dialect) {
				continue
			}
			n++
			name := fmt.Sprintf("%s=%v", tt.column, tt.value)
			nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "corrupt", UserID: "mallory"})
			require.NoError(t, err)
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err, "the key before %s", name)
			_, err = db.ExecContext(ctx(t), "UPDATE "+quote(db.dialect, s.Table())+" SET "+tt.column+" = "+ph(db.dialect, 1)+
				" WHERE id = "+ph(db.dialect, 2), tt.value, nk.ID)
			require.NoError(t, err, name)

			_, err = s.Get(t.Context(), nk.ID)
			if assert.Error(t, err, "Get with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Get with %s", name)
				assert.ErrorContains(t, err, tt.column, "Get with %s", name)
			}
			_, err = s.List(t.Context(), "mallory", apikeys.ListQuery{Limit: 100})
			if assert.Error(t, err, "List with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "List with %s", name)
			}
			_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
			var se *apikeys.StoreError
			assert.True(t, errors.As(err, &se), "Authorize with %s = %v, want a *apikeys.StoreError", name, err)
			// Out of the way of the next case's List.
			_, err = db.ExecContext(ctx(t), "DELETE FROM "+quote(db.dialect, s.Table())+" WHERE id = "+ph(db.dialect, 1), nk.ID)
			require.NoError(t, err)
		}
		require.Positive(t, n)
	})
}
