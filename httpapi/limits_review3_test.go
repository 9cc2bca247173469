package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReview3LimitMembersExactCase: decodeObject checks member names in
// exact case (hasMembers), but decodes them with encoding/json, which
// matches names case-insensitively and lets the last one win. So a body
// whose "limit" reads 5 is stored with 1000, and a credits object that
// names its refill exactly is stored without one: whatever inspects the
// JSON by exact names (a gateway's policy, an audit log, the client's own
// code) reads another key than the one stored. Each must be a 400 and
// store nothing.
func TestReview3LimitMembersExactCase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"limit shadowed by LIMIT", `"rate_limit":{"limit":5,"window_seconds":60,"LIMIT":1000}`},
		{"window shadowed by Window_Seconds", `"rate_limit":{"limit":5,"window_seconds":3600,"Window_Seconds":1}`},
		{"refill dropped by Refill null", `"credits":{"remaining":10,"refill":{"amount":10,"interval_seconds":86400},"Refill":null}`},
		{"remaining shadowed by REMAINING", `"credits":{"remaining":10,"refill":null,"REMAINING":1000000}`},
		{"refill amount shadowed", `"credits":{"remaining":10,"refill":{"amount":10,"interval_seconds":86400,"AMOUNT":1000000}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"public",`+tt.body+`}}`)
			assert.Equal(t, http.StatusBadRequest, res.code, res.raw)
			assert.Equal(t, 2, e.count("alice"), "nothing stored")

			id := e.alicePub.ID.String()
			res = e.do(e.alice.Value, "PUT", "/api_keys/"+id, `{"api_key":{`+tt.body+`}}`)
			assert.Equal(t, http.StatusBadRequest, res.code, res.raw)
			k, err := e.m.Get(t.Context(), "alice", e.alicePub.ID)
			require.NoError(t, err)
			assert.False(t, k.Limited(), "nothing stored")
		})
	}
}
