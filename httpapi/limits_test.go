package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func TestLimitsFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"widget","key_type":"public",
		"rate_limit":{"limit":100,"window_seconds":60},
		"credits":{"remaining":1000,"refill":{"amount":1000,"interval_seconds":86400}}}}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	d := res.data()
	assert.Equal(t, map[string]any{"limit": float64(100), "window_seconds": float64(60)}, d["rate_limit"])
	assert.Equal(t, map[string]any{"remaining": float64(1000), "refill": map[string]any{"amount": float64(1000), "interval_seconds": float64(86400)}}, d["credits"])
	id := d["id"].(string)
	value := d["key_value"].(string)

	for range 3 {
		_, err := e.m.Authorize(t.Context(), value, apikeys.Request{})
		require.NoError(t, err)
	}
	res = e.do(e.alice.Value, "GET", "/api_keys/"+id, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	assert.Equal(t, float64(997), res.data()["credits"].(map[string]any)["remaining"])

	res = e.do(e.alice.Value, "PUT", "/api_keys/"+id, `{"api_key":{"credits":{"remaining":5,"refill":null}}}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	assert.Equal(t, map[string]any{"remaining": float64(5), "refill": nil}, res.data()["credits"], "PUT sets remaining")
	assert.NotNil(t, res.data()["rate_limit"], "fields not sent are kept")

	res = e.do(e.alice.Value, "PUT", "/api_keys/"+id, `{"api_key":{"rate_limit":null,"credits":null}}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	assert.Nil(t, res.data()["rate_limit"])
	assert.Nil(t, res.data()["credits"])
	assert.Contains(t, res.raw, `"rate_limit":null`)
}

func TestLimitsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not an object", `"rate_limit":100`, "rate_limit: must be null or an object"},
		{"unknown member", `"rate_limit":{"limit":1,"window_seconds":1,"burst":5}`, "rate_limit: must be null or an object"},
		{"missing member", `"rate_limit":{"limit":1}`, "rate_limit: must be null or an object"},
		{"member in capitals", `"rate_limit":{"LIMIT":1,"window_seconds":1}`, "rate_limit: must be null or an object"},
		{"fraction", `"rate_limit":{"limit":1.5,"window_seconds":1}`, "rate_limit: must be null or an object"},
		{"zero limit", `"rate_limit":{"limit":0,"window_seconds":60}`, "rate_limit.limit: must be 1 to"},
		{"credits without remaining", `"credits":{"refill":{"amount":1,"interval_seconds":60}}`, "credits: must be null or an object"},
		{"credits without refill member", `"credits":{"remaining":5}`, "credits: must be null or an object"},
		{"refill missing a member", `"credits":{"remaining":5,"refill":{"amount":1}}`, "credits: must be null or an object"},
		{"negative credits", `"credits":{"remaining":-1,"refill":null}`, "credits.remaining: must be 0 to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"public",`+tt.body+`}}`)
			require.Equal(t, http.StatusBadRequest, res.code, res.raw)
			require.Len(t, res.errs(), 1, "%q", res.errs())
			assert.True(t, strings.HasPrefix(res.errs()[0], tt.want), "%q, want %q", res.errs(), tt.want)
			assert.Equal(t, 2, e.count("alice"), "nothing stored")
		})
	}
}

// TestLimitedKeyCannotMintBudget: a key with credits cannot create a key
// with more, nor one without limits.
func TestLimitedKeyCannotMintBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	limited, err := e.m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "limited", UserID: "alice",
		Credits: &apikeys.Credits{Remaining: 10}})
	require.NoError(t, err)
	for _, body := range []string{
		`{"api_key":{"name":"x","key_type":"public"}}`,
		`{"api_key":{"name":"x","key_type":"public","credits":{"remaining":1000,"refill":null}}}`,
	} {
		res := e.do(limited.Value, "POST", "/api_keys", body)
		require.Equal(t, http.StatusForbidden, res.code, res.raw)
		assert.Equal(t, "credits", res.body["restriction"])
	}
	res := e.do(limited.Value, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"public","credits":{"remaining":5,"refill":null}}}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
}
