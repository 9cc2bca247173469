package apikeys_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// TestDisabledKey: a disabled key is an invalid key to callers and a
// disabled one to operators, keeps its settings, and works again when
// enabled.
func TestDisabledKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{AllowedAssistants: []string{"a1"}})
	req := apikeys.Request{AssistantID: "a1"}
	_, err := e.m.Authorize(e.ctx, nk.Value, req)
	require.NoError(t, err)

	k, err := e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)
	assert.True(t, k.Disabled)
	assert.Equal(t, []string{"a1"}, k.AllowedAssistants, "settings kept")
	got, err := e.m.Authorize(e.ctx, nk.Value, req)
	require.ErrorIs(t, err, apikeys.ErrInvalidKey, "callers see an invalid key")
	require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "operators see why")
	assert.Zero(t, got)

	_, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Disabled: new(false)})
	require.NoError(t, err)
	_, err = e.m.Authorize(e.ctx, nk.Value, req)
	require.NoError(t, err, "the same value works again")

	off := e.create(t, apikeys.CreateParams{Disabled: true})
	_, err = e.m.Authorize(e.ctx, off.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "created disabled")
}

func TestKeyJSONEnabled(t *testing.T) {
	t.Parallel()
	for _, disabled := range []bool{false, true} {
		k := apikeys.NewKey{Key: apikeys.Key{Name: "n", Disabled: disabled, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, Value: "v"}
		b, err := json.Marshal(k)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		assert.Equal(t, !disabled, m["enabled"])
		assert.Equal(t, "v", m["key_value"])
		assert.Equal(t, []any{"10.0.0.0/8"}, m["allowed_ips"])
		assert.NotContains(t, m, "Disabled")
		var back apikeys.NewKey
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, k, back)

		b, err = json.Marshal(k.Key)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "key_value")
		var kb apikeys.Key
		require.NoError(t, json.Unmarshal(b, &kb))
		assert.Equal(t, k.Key, kb)
	}
	var k apikeys.Key
	require.NoError(t, json.Unmarshal([]byte(`{"name":"old"}`), &k))
	assert.False(t, k.Disabled, `a missing "enabled" is true`)
}

func TestScopesAndIPsValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("r%d:read", i)
	}
	tests := []struct {
		name   string
		p      apikeys.CreateParams
		fields []string
	}{
		{"good scopes", apikeys.CreateParams{Scopes: []string{"calls:write", "calls:*", "api_keys:read", "a.b-c_d:x.y"}}, nil},
		{"scope without colon", apikeys.CreateParams{Scopes: []string{"calls"}}, []string{"scopes[0]"}},
		{"scope with two colons", apikeys.CreateParams{Scopes: []string{"a:b:c"}}, []string{"scopes[0]"}},
		{"upper case scope", apikeys.CreateParams{Scopes: []string{"Calls:write"}}, []string{"scopes[0]"}},
		{"wildcard resource", apikeys.CreateParams{Scopes: []string{"*:read"}}, []string{"scopes[0]"}},
		{"empty action", apikeys.CreateParams{Scopes: []string{"calls:"}}, []string{"scopes[0]"}},
		{"too long part", apikeys.CreateParams{Scopes: []string{fmt.Sprintf("%065d:x", 0)}}, []string{"scopes[0]"}},
		{"too many scopes", apikeys.CreateParams{Scopes: many}, []string{"scopes"}},
		{"good ips", apikeys.CreateParams{AllowedIPs: []string{"203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "::1"}}, nil},
		{"not an ip", apikeys.CreateParams{AllowedIPs: []string{"example.com"}}, []string{"allowed_ips[0]"}},
		{"zone", apikeys.CreateParams{AllowedIPs: []string{"fe80::1%eth0"}}, []string{"allowed_ips[0]"}},
		{"bad bits", apikeys.CreateParams{AllowedIPs: []string{"10.0.0.0/33"}}, []string{"allowed_ips[0]"}},
		{"mapped too short", apikeys.CreateParams{AllowedIPs: []string{"::ffff:0:0/80"}}, []string{"allowed_ips[0]"}},
		{"both bad", apikeys.CreateParams{Scopes: []string{"x"}, AllowedIPs: []string{"300.1.1.1"}}, []string{"scopes[0]", "allowed_ips[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p
			p.Type, p.Name, p.UserID = apikeys.Public, "k", "alice"
			_, err := e.m.Create(e.ctx, p)
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apikeys.ErrValidation)
			assert.Equal(t, tt.fields, fields(err))
		})
	}
}

func TestIPCanonicalForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{AllowedIPs: []string{"10.1.2.3/8", "::ffff:192.0.2.1", "::ffff:10.0.0.0/104", "2001:DB8::/32", "203.0.113.7"}})
	var got []string
	for _, p := range nk.AllowedIPs {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32", "203.0.113.7/32"}, got, "masked, unmapped, deduplicated")
	p, err := apikeys.ParseIPPrefix("::ffff:10.0.0.0/104")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.0/8", p.String())
	_, err = apikeys.ParseIPPrefix("nope")
	assert.ErrorIs(t, err, apikeys.ErrValidation)
}

func TestAuthorizeScopesAndIPs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	scoped := e.create(t, apikeys.CreateParams{Scopes: []string{"calls:write", "assistants:*"}})
	ips := e.create(t, apikeys.CreateParams{AllowedIPs: []string{"10.0.0.0/8", "2001:db8::/32"}})
	open := e.create(t, apikeys.CreateParams{})
	addr := netip.MustParseAddr
	tests := []struct {
		name string
		key  string
		req  apikeys.Request
		want error
	}{
		{"held scope", scoped.Value, apikeys.Request{Scopes: []string{"calls:write"}}, nil},
		{"wildcard scope", scoped.Value, apikeys.Request{Scopes: []string{"assistants:delete", "calls:write"}}, nil},
		{"missing scope", scoped.Value, apikeys.Request{Scopes: []string{"calls:read"}}, apikeys.ErrInsufficientScope},
		{"one of two missing", scoped.Value, apikeys.Request{Scopes: []string{"calls:write", "billing:read"}}, apikeys.ErrInsufficientScope},
		{"no scope named, scoped key", scoped.Value, apikeys.Request{}, apikeys.ErrInsufficientScope},
		{"unscoped key, any scope", open.Value, apikeys.Request{Scopes: []string{"billing:write"}}, nil},
		{"ip inside", ips.Value, apikeys.Request{ClientIP: addr("10.9.8.7")}, nil},
		{"ipv6 inside", ips.Value, apikeys.Request{ClientIP: addr("2001:db8::42")}, nil},
		{"mapped ipv4 inside", ips.Value, apikeys.Request{ClientIP: addr("::ffff:10.1.1.1")}, nil},
		{"ip outside", ips.Value, apikeys.Request{ClientIP: addr("11.0.0.1")}, apikeys.ErrIPNotAllowed},
		{"no ip named", ips.Value, apikeys.Request{}, apikeys.ErrIPNotAllowed},
		{"unrestricted key, any ip", open.Value, apikeys.Request{ClientIP: addr("192.0.2.1")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := e.m.Authorize(e.ctx, tt.key, tt.req)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.NotZero(t, k.ID, "a refusal of a valid key names the key")
		})
	}
	_, err := e.m.Authorize(e.ctx, scoped.Value, apikeys.Request{Scopes: []string{"calls:read"}})
	var se *apikeys.ScopeError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, "calls:read", se.Scope)
}

// TestNarrowingScopesAndIPs: a key with scopes or addresses can give only
// what it holds, needs api_keys:write to change keys and api_keys:read to
// read them, and a disabled key manages nothing.
func TestNarrowingScopesAndIPs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	manager := e.create(t, apikeys.CreateParams{Type: apikeys.Private,
		Scopes: []string{"api_keys:*", "calls:write"}, AllowedIPs: []string{"10.0.0.0/8"}})
	reader := e.create(t, apikeys.CreateParams{Type: apikeys.Private, Scopes: []string{"api_keys:read"}})
	caller := e.create(t, apikeys.CreateParams{Type: apikeys.Private, Scopes: []string{"calls:write"}})
	tests := []struct {
		name   string
		actor  apikeys.NewKey
		p      apikeys.CreateParams
		fields []string // permission fields; nil: allowed
		scope  string   // a *ScopeError for this scope instead
	}{
		{"within", manager, apikeys.CreateParams{Scopes: []string{"calls:write"}, AllowedIPs: []string{"10.1.0.0/16"}}, nil, ""},
		{"no scopes", manager, apikeys.CreateParams{AllowedIPs: []string{"10.1.0.0/16"}}, []string{"scopes"}, ""},
		{"scope not held", manager, apikeys.CreateParams{Scopes: []string{"calls:read"}, AllowedIPs: []string{"10.1.0.0/16"}}, []string{"scopes[0]"}, ""},
		{"wildcard within wildcard", manager, apikeys.CreateParams{Scopes: []string{"api_keys:*"}, AllowedIPs: []string{"10.1.2.3"}}, nil, ""},
		{"no ips", manager, apikeys.CreateParams{Scopes: []string{"calls:write"}}, []string{"allowed_ips"}, ""},
		{"wider prefix", manager, apikeys.CreateParams{Scopes: []string{"calls:write"}, AllowedIPs: []string{"10.0.0.0/7"}}, []string{"allowed_ips[0]"}, ""},
		{"other prefix", manager, apikeys.CreateParams{Scopes: []string{"calls:write"}, AllowedIPs: []string{"192.168.0.0/16"}}, []string{"allowed_ips[0]"}, ""},
		{"reader cannot write", reader, apikeys.CreateParams{Scopes: []string{"api_keys:read"}}, nil, "api_keys:write"},
		{"caller cannot manage", caller, apikeys.CreateParams{Scopes: []string{"calls:write"}}, nil, "api_keys:write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p
			p.Type, p.Name, p.UserID = apikeys.Public, "child", "alice"
			_, err := e.m.Create(apikeys.NewContext(e.ctx, tt.actor.Key), p)
			switch {
			case tt.scope != "":
				var se *apikeys.ScopeError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tt.scope, se.Scope)
			case tt.fields != nil:
				require.ErrorIs(t, err, apikeys.ErrNotPermitted)
				assert.Equal(t, tt.fields, permissionFields(err))
			default:
				require.NoError(t, err)
			}
		})
	}
	_, err := e.m.List(apikeys.NewContext(e.ctx, reader.Key), "alice", apikeys.ListParams{})
	require.NoError(t, err, "api_keys:read reads")
	_, err = e.m.List(apikeys.NewContext(e.ctx, caller.Key), "alice", apikeys.ListParams{})
	require.ErrorIs(t, err, apikeys.ErrInsufficientScope, "calls:write does not read keys")

	off := e.create(t, apikeys.CreateParams{Type: apikeys.Private, TransientAssistant: true})
	_, err = e.m.Update(e.ctx, "alice", off.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)
	_, err = e.m.List(apikeys.NewContext(e.ctx, off.Key), "alice", apikeys.ListParams{})
	require.ErrorIs(t, err, apikeys.ErrNotPermitted, "a disabled key manages nothing")
}
