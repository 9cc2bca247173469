package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func TestEnabledScopesIPsOverREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"ci","key_type":"private","scopes":["calls:write","api_keys:read"],"allowed_ips":["10.1.2.3/8","2001:DB8::1"],"enabled":false}}`)
	require.Equal(t, 201, res.code, res.raw)
	d := res.data()
	id, value := d["id"].(string), d["key_value"].(string)
	assert.Equal(t, []any{"calls:write", "api_keys:read"}, d["scopes"])
	assert.Equal(t, []any{"10.0.0.0/8", "2001:db8::1/128"}, d["allowed_ips"])
	assert.Equal(t, false, d["enabled"])
	_, err := e.m.Authorize(t.Context(), value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrKeyDisabled)

	res = e.do(e.alice.Value, "PUT", "/api_keys/"+id, `{"api_key":{"enabled":true,"scopes":["calls:write"]}}`)
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, true, res.data()["enabled"])
	assert.Equal(t, []any{"calls:write"}, res.data()["scopes"])
	res = e.do(e.alice.Value, "GET", "/api_keys/"+id, "")
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, []any{"10.0.0.0/8", "2001:db8::1/128"}, res.data()["allowed_ips"], "GET shows them")

	res = e.do(e.alice.Value, "PUT", "/api_keys/"+id, `{"api_key":{"enabled":"yes","scopes":["nope"],"allowed_ips":["10.0.0.1/99"]}}`)
	require.Equal(t, 400, res.code, res.raw)
	errs := strings.Join(res.errs(), "\n")
	for _, want := range []string{"enabled: must be true or false", "scopes[0]:", "allowed_ips[0]:"} {
		assert.Contains(t, errs, want)
	}
	res = e.do(e.alice.Value, "GET", "/api_keys/"+id, "")
	assert.Equal(t, true, res.data()["enabled"], "a 400 changes nothing")
}

// TestScopedKeyCannotManage: keys need api_keys:read to read keys and
// api_keys:write to change them, when they have scopes at all.
func TestScopedKeyCannotManage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mk := func(scopes string) string {
		res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"s","key_type":"private","transient_assistant":true,"scopes":`+scopes+`}}`)
		require.Equal(t, 201, res.code, res.raw)
		return res.data()["key_value"].(string)
	}
	calls, reader := mk(`["calls:write"]`), mk(`["api_keys:read"]`)
	tests := []struct {
		name, key, method, body string
		status                  int
		scope                   string
	}{
		{"calls key lists", calls, "GET", "", 403, "api_keys:read"},
		{"calls key creates", calls, "POST", `{"api_key":{"name":"x","key_type":"public","scopes":["calls:write"]}}`, 403, "api_keys:write"},
		{"reader lists", reader, "GET", "", 200, ""},
		{"reader creates", reader, "POST", `{"api_key":{"name":"x","key_type":"public","scopes":["api_keys:read"]}}`, 403, "api_keys:write"},
	}
	for _, tt := range tests {
		res := e.do(tt.key, tt.method, "/api_keys", tt.body)
		require.Equal(t, tt.status, res.code, "%s: %s", tt.name, res.raw)
		if tt.scope != "" {
			assert.Equal(t, `Bearer realm="api", error="insufficient_scope", scope="`+tt.scope+`"`, res.header.Get("WWW-Authenticate"), tt.name)
			assert.Equal(t, "scopes", res.body["restriction"], tt.name)
		}
	}
}
