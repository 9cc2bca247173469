package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

func expiryIn(d time.Duration) string {
	b, _ := json.Marshal(time.Now().Add(d).UTC().Truncate(time.Second))
	return string(b)
}

// TestRestrictedKeyCannotGrantMore replays issue 10's attack over HTTP: a
// restricted private key tried to create an unrestricted key, clear its own
// expiry and delete its owner's other keys.
func TestRestrictedKeyCannotGrantMore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"hour","key_type":"private","expires_at":`+expiryIn(time.Hour)+`}}`)
	require.Equal(t, 201, res.code, res.raw)
	hourID, hour := res.data()["id"].(string), res.data()["key_value"].(string)
	res = e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"assistant","key_type":"private","allowed_assistants":["a1"]}}`)
	require.Equal(t, 201, res.code, res.raw)
	assistant := res.data()["key_value"].(string)

	tests := []struct {
		name, key, method, path, body string
		status                        int
		restriction                   string
	}{
		{"unrestricted, never-expiring key", hour, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"private"}}`, 403, "expires_at"},
		{"clear its own expiry", hour, "PUT", "/api_keys/" + hourID, `{"api_key":{"expires_at":null}}`, 403, "expires_at"},
		{"delete a wider key", hour, "DELETE", "/api_keys/" + e.alice.ID.String(), "", 403, ""},
		{"rotate a wider key", hour, "POST", "/api_keys/" + e.alice.ID.String() + "/rotate", "", 403, ""},
		{"key limited to an assistant names none here", assistant, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"private"}}`, 403, "allowed_assistants"},
		{"a key within it", hour, "POST", "/api_keys", `{"api_key":{"name":"x","key_type":"public","expires_at":` + expiryIn(time.Minute) + `}}`, 201, ""},
	}
	for _, tt := range tests { // in order: the last one creates a key
		res := e.do(tt.key, tt.method, tt.path, tt.body)
		require.Equal(t, tt.status, res.code, "%s: %s", tt.name, res.raw)
		if tt.restriction != "" {
			assert.Equal(t, tt.restriction, res.body["restriction"], tt.name)
		}
	}
	_, err := e.m.Get(t.Context(), "alice", e.alice.ID)
	require.NoError(t, err, "the wider key survived")
}

// TestRetiringKeyCannotManage: a key rotated out with a grace period (say,
// because it leaked) cannot un-retire itself (issue 10).
func TestRetiringKeyCannotManage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys/"+e.alice.ID.String()+"/rotate", `{"grace_period_seconds": 3600}`)
	require.Equal(t, 201, res.code, res.raw)
	successor := res.data()["key_value"].(string)
	res = e.do(e.alice.Value, "PUT", "/api_keys/"+e.alice.ID.String(), `{"api_key":{"expires_at":null}}`)
	require.Equal(t, 403, res.code, res.raw)
	assert.Equal(t, "key", res.body["restriction"])
	assert.Contains(t, res.errs()[0], "rotated out")
	res = e.do(e.alice.Value, "POST", "/api_keys/"+e.alice.ID.String()+"/rotate", "")
	assert.Equal(t, 403, res.code, res.raw)
	res = e.do(successor, "POST", "/api_keys/"+e.alice.ID.String()+"/rotate", "")
	assert.Equal(t, 409, res.code, "a rotated key is not rotated again: %s", res.raw)
	res = e.do(successor, "GET", "/api_keys/"+e.alice.ID.String(), "")
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, res.data()["successor_id"], mustID(t, successor, e))
}

func mustID(t *testing.T, value string, e *env) string {
	t.Helper()
	k, err := e.m.Authorize(t.Context(), value, apikeys.Request{})
	require.NoError(t, err)
	return k.ID.String()
}

// retireFails fails the Update that retires a rotated key.
type retireFails struct{ apikeys.Store }

func (s retireFails) Update(ctx context.Context, rec apikeys.Record) error {
	if rec.SuccessorID != uuid.Nil {
		return context.DeadlineExceeded
	}
	return s.Store.Update(ctx, rec)
}

// TestRotateWarnsWhenOldKeyLive: a failed retirement answers 201 with the
// new key and a warning, never a 503 that hides a working key (issue 10).
func TestRotateWarnsWhenOldKeyLive(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, retireFails{memstore.New()}, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys/"+e.alice.ID.String()+"/rotate", "")
	require.Equal(t, 201, res.code, res.raw)
	assert.NotEmpty(t, res.data()["key_value"])
	assert.Contains(t, res.body["warning"], "old key")
	for _, v := range []string{e.alice.Value, res.data()["key_value"].(string)} {
		_, err := e.m.Authorize(t.Context(), v, apikeys.Request{})
		assert.NoError(t, err)
	}
}
