package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

type env struct {
	t          *testing.T
	m          *apikeys.Manager
	h          http.Handler
	alice, bob apikeys.NewKey // private keys
	alicePub   apikeys.NewKey
}

func newEnv(t *testing.T, cfg *httpapi.Config) *env {
	t.Helper()
	return newEnvOn(t, memstore.New(), cfg)
}

func newEnvOn(t *testing.T, store apikeys.Store, cfg *httpapi.Config) *env {
	t.Helper()
	return newEnvWith(t, store, nil, cfg)
}

// newEnvWith is newEnvOn with a Manager Config, and then the JWKS mounted
// outside the middleware, as the package documentation shows.
func newEnvWith(t *testing.T, store apikeys.Store, mcfg *apikeys.Config, cfg *httpapi.Config) *env {
	t.Helper()
	m, err := apikeys.New(store, mcfg)
	require.NoError(t, err)
	mw, err := middleware.New(m, nil)
	require.NoError(t, err)
	rest, err := httpapi.New(m, cfg)
	require.NoError(t, err)
	api := mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
	mux := http.NewServeMux()
	if mcfg != nil {
		mux.Handle("GET /api_keys/tokens/jwks.json", httpapi.JWKS(m))
	}
	mux.Handle("/api_keys", api)
	mux.Handle("/api_keys/", api)
	e := &env{t: t, m: m, h: validated(t, "", mux)}
	mk := func(user string, typ apikeys.KeyType) apikeys.NewKey {
		// Full keys: no restriction, transient assistants allowed.
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: typ, Name: "bootstrap", UserID: user, UserEmail: user + "@example.com", TransientAssistant: true})
		require.NoError(t, err)
		return nk
	}
	e.alice, e.bob, e.alicePub = mk("alice", apikeys.Private), mk("bob", apikeys.Private), mk("alice", apikeys.Public)
	return e
}

type response struct {
	code   int
	header http.Header
	raw    string
	body   map[string]any
}

func (e *env) do(key, method, path, body string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := response{code: w.Code, header: w.Header(), raw: w.Body.String()}
	if method != "HEAD" && w.Body.Len() > 0 {
		require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), &res.body), res.raw)
	}
	return res
}

func (r response) data() map[string]any { return r.body["data"].(map[string]any) }

func (r response) errs() []string {
	var out []string
	for _, e := range r.body["errors"].([]any) {
		out = append(out, e.(string))
	}
	return out
}

func (e *env) count(user string) int {
	page, err := e.m.List(e.t.Context(), user, apikeys.ListParams{Limit: 1000})
	require.NoError(e.t, err)
	return len(page.Keys)
}

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"widget","key_type":"public",
		"allowed_origins":["HTTPS://App.Example.com"],"allowed_assistants":["asst-1"],"transient_assistant":true,
		"expires_at":"2099-01-02T03:04:05Z"}}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	assert.Equal(t, map[string]any{"code": float64(201), "message": "Success"}, res.body["status"])
	d := res.data()
	assert.Equal(t, "widget", d["name"])
	assert.Equal(t, "public", d["key_type"])
	assert.Equal(t, []any{"https://app.example.com"}, d["allowed_origins"])
	assert.Equal(t, []any{"asst-1"}, d["allowed_assistants"])
	assert.Equal(t, true, d["transient_assistant"])
	assert.Equal(t, "alice", d["user_id"])
	assert.Equal(t, "alice@example.com", d["user_email"])
	assert.Equal(t, "2099-01-02T03:04:05Z", d["expires_at"])
	value, _ := d["key_value"].(string)
	require.True(t, strings.HasPrefix(value, "ak_pk_"), value)
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))

	k, err := e.m.Authorize(t.Context(), value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1", Transient: true})
	require.NoError(t, err)
	assert.Equal(t, "alice", k.UserID)
}

func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		errs []string
	}{
		{"malformed JSON", `{"api_key":`, []string{"body: invalid JSON"}},
		{"not an object", `[1,2]`, []string{"body: must be a JSON object"}},
		{"missing wrapper", `{"name":"x","key_type":"public"}`, []string{`"key_type": unknown field`, `"name": unknown field`, "api_key: required"}},
		{"wrapper not an object", `{"api_key":"x"}`, []string{"api_key: must be an object"}},
		{"null wrapper", `{"api_key":null}`, []string{"api_key: must be an object"}},
		{"unknown field", `{"api_key":{"name":"x","key_type":"public","colour":"red"}}`, []string{`"colour": unknown field`}},
		{"key_value", `{"api_key":{"name":"x","key_type":"public","key_value":"ak_pk_x"}}`, []string{"key_value: cannot be set"}},
		{"owner fields", `{"api_key":{"name":"x","key_type":"public","user_id":"bob"}}`, []string{"user_id: is set from the authenticated key"}},
		{"wrong types", `{"api_key":{"name":5,"key_type":true,"allowed_origins":"https://a.example","allowed_assistants":[1],"transient_assistant":"yes","expires_at":"tomorrow"}}`,
			[]string{"name: must be a string", "key_type: must be a string", "allowed_origins: must be an array", "allowed_assistants: must be an array", "transient_assistant: must be true or false", "expires_at: must be an RFC 3339 time"}},
		{"invalid fields", `{"api_key":{"name":"","key_type":"admin","allowed_origins":["https://ok.example","null","https://*.com"],"allowed_assistants":["a b"]}}`,
			[]string{"name: is required", "key_type: must be", "allowed_origins[1]: ", "allowed_origins[2]: wildcard directly on a public suffix", "allowed_assistants[0]: must be"}},
		{"mixed", `{"api_key":{"name":7,"key_type":"admin","foo":1}}`, []string{"name: must be a string", "key_type: must be", `"foo": unknown field`}},
		{"past expiry", `{"api_key":{"name":"x","key_type":"public","expires_at":"2001-01-01T00:00:00Z"}}`, []string{"expires_at: must be in the future"}},
		{"too large", `{"api_key":{"name":"x","key_type":"public","allowed_assistants":["` + strings.Repeat("a", 70<<10) + `"]}}`, []string{"body: at most 65536 bytes"}},
		{"empty body", ``, []string{"body: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			res := e.do(e.alice.Value, "POST", "/api_keys", tt.body)
			require.Equal(t, http.StatusBadRequest, res.code, res.raw)
			assert.Equal(t, map[string]any{"code": float64(400), "message": "Bad Request"}, res.body["status"])
			assert.NotEmpty(t, res.body["error"])
			errs := res.errs()
			require.Len(t, errs, len(tt.errs), "errors: %q", errs)
			for _, want := range tt.errs {
				found := false
				for _, got := range errs {
					found = found || strings.Contains(got, want)
				}
				assert.True(t, found, "errors %q lack %q", errs, want)
			}
			assert.Equal(t, 2, e.count("alice"), "nothing stored")
		})
	}
}

func TestListGetUpdateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var ids []string
	for i := range 5 {
		res := e.do(e.alice.Value, "POST", "/api_keys", fmt.Sprintf(`{"api_key":{"name":"k%d","key_type":"public"}}`, i))
		require.Equal(t, 201, res.code, res.raw)
		ids = append([]string{res.data()["id"].(string)}, ids...)
	}

	// List pages newest first and never shows key_value.
	res := e.do(e.alice.Value, "GET", "/api_keys?limit=3", "")
	require.Equal(t, 200, res.code, res.raw)
	assert.NotContains(t, res.raw, "key_value")
	page := res.body["data"].([]any)
	require.Len(t, page, 3)
	for i, k := range page {
		assert.Equal(t, ids[i], k.(map[string]any)["id"])
	}
	pg := res.body["pagination"].(map[string]any)
	assert.Equal(t, true, pg["has_more"])
	res = e.do(e.alice.Value, "GET", "/api_keys?limit=3&cursor="+pg["next_cursor"].(string), "")
	require.Equal(t, 200, res.code)
	assert.Len(t, res.body["data"].([]any), 3, "2 more created + 2 bootstrap keys, limited to 3")
	for _, q := range []string{"limit=0", "limit=1001", "limit=abc", "limit=-1", "cursor=nope"} {
		res := e.do(e.alice.Value, "GET", "/api_keys?"+q, "")
		assert.Equal(t, 400, res.code, q)
	}

	// Get.
	res = e.do(e.alice.Value, "GET", "/api_keys/"+ids[0], "")
	require.Equal(t, 200, res.code)
	assert.Equal(t, "k4", res.data()["name"])
	assert.NotContains(t, res.raw, "key_value")

	// Partial update.
	res = e.do(e.alice.Value, "PUT", "/api_keys/"+ids[0], `{"api_key":{"name":"renamed","allowed_origins":["https://a.example"]}}`)
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, "renamed", res.data()["name"])
	assert.Equal(t, "public", res.data()["key_type"])
	assert.Equal(t, []any{"https://a.example"}, res.data()["allowed_origins"])
	assert.NotContains(t, res.raw, "key_value")
	res = e.do(e.alice.Value, "PUT", "/api_keys/"+ids[0], `{"api_key":{"transient_assistant":true,"expires_at":null}}`)
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, "renamed", res.data()["name"], "absent field unchanged")
	assert.Equal(t, []any{"https://a.example"}, res.data()["allowed_origins"])
	for body, want := range map[string]string{
		`{"api_key":{"key_type":"private"}}`:                "key_type: cannot be changed",
		`{"api_key":{"key_value":"x"}}`:                     "key_value: cannot be set",
		`{"api_key":{"name":""}}`:                           "name: is required",
		`{"api_key":{"allowed_origins":null}}`:              "allowed_origins: must be an array",
		`{"api_key":{"name":1,"allowed_origins":["null"]}}`: "allowed_origins[0]",
	} {
		res := e.do(e.alice.Value, "PUT", "/api_keys/"+ids[0], body)
		require.Equal(t, 400, res.code, body)
		assert.Contains(t, strings.Join(res.errs(), "|"), want, body)
	}
	res = e.do(e.alice.Value, "GET", "/api_keys/"+ids[0], "")
	assert.Equal(t, "renamed", res.data()["name"], "refused updates changed nothing")

	// Delete: the key stops working at once; a second delete is 404.
	created := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"doomed","key_type":"public"}}`)
	value, id := created.data()["key_value"].(string), created.data()["id"].(string)
	_, err := e.m.Authorize(t.Context(), value, apikeys.Request{})
	require.NoError(t, err)
	res = e.do(e.alice.Value, "DELETE", "/api_keys/"+id, "")
	require.Equal(t, 200, res.code)
	assert.Equal(t, "doomed", res.data()["name"])
	assert.NotContains(t, res.raw, "key_value")
	_, err = e.m.Authorize(t.Context(), value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey)
	assert.Equal(t, 404, e.do(e.alice.Value, "DELETE", "/api_keys/"+id, "").code)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	created := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"rot","key_type":"public","allowed_assistants":["a1"]}}`)
	id, old := created.data()["id"].(string), created.data()["key_value"].(string)

	res := e.do(e.alice.Value, "POST", "/api_keys/"+id+"/rotate", `{"grace_period_seconds": 3600}`)
	require.Equal(t, 201, res.code, res.raw)
	fresh := res.data()["key_value"].(string)
	assert.NotEqual(t, old, fresh)
	assert.Equal(t, []any{"a1"}, res.data()["allowed_assistants"])
	_, err := e.m.Authorize(t.Context(), old, apikeys.Request{AssistantID: "a1"})
	assert.NoError(t, err, "old key works during the grace period")

	res = e.do(e.alice.Value, "POST", "/api_keys/"+res.data()["id"].(string)+"/rotate", "")
	require.Equal(t, 201, res.code, "no body: grace 0")
	_, err = e.m.Authorize(t.Context(), fresh, apikeys.Request{AssistantID: "a1"})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey)

	for _, body := range []string{`{"grace_period_seconds":-1}`, `{"grace_period_seconds":"1"}`, `{"grace_period_seconds":99999999}`, `{"grace_period_seconds":18446744074}`, `{"grace":1}`, `{`} {
		assert.Equal(t, 400, e.do(e.alice.Value, "POST", "/api_keys/"+id+"/rotate", body).code, body)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.alice.ID.String()
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api_keys/" + id, ""},
		{"PUT", "/api_keys/" + id, `{"api_key":{"name":"mine"}}`},
		{"DELETE", "/api_keys/" + id, ""},
		{"POST", "/api_keys/" + id + "/rotate", ""},
	} {
		res := e.do(e.bob.Value, r.method, r.path, r.body)
		assert.Equal(t, 404, res.code, r.method)
		assert.Equal(t, "API key not found", res.body["error"])
	}
	res := e.do(e.bob.Value, "GET", "/api_keys", "")
	require.Len(t, res.body["data"].([]any), 1)
	k, err := e.m.Get(t.Context(), "alice", e.alice.ID)
	require.NoError(t, err)
	assert.Equal(t, "bootstrap", k.Name)
	// Ids that are not ids are not found either.
	for _, p := range []string{"/api_keys/nope", "/api_keys/" + strings.ToUpper(id) + "x", "/api_keys/" + uuid.NewString()} {
		assert.Equal(t, 404, e.do(e.alice.Value, "GET", p, "").code, p)
	}
}

func TestAuthAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alicePub.Value, "GET", "/api_keys", "")
	require.Equal(t, 403, res.code)
	assert.Contains(t, res.body["error"], "private key")
	assert.Equal(t, 401, e.do("", "GET", "/api_keys", "").code)

	for _, tt := range []struct{ method, path, allow string }{
		{"DELETE", "/api_keys", "GET, HEAD, POST"},
		{"PATCH", "/api_keys/" + e.alice.ID.String(), "DELETE, GET, HEAD, PUT"},
		{"GET", "/api_keys/" + e.alice.ID.String() + "/rotate", "POST"},
	} {
		res := e.do(e.alice.Value, tt.method, tt.path, "")
		assert.Equal(t, 405, res.code, tt.method+" "+tt.path)
		assert.Equal(t, tt.allow, res.header.Get("Allow"))
	}
	assert.Equal(t, 404, e.do(e.alice.Value, "GET", "/api_keys/x/y/z", "").code)
}

func TestCustomOwnerAndPrefix(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := httpapi.New(m, &httpapi.Config{
		Prefix: "/v1",
		Owner: func(r *http.Request) (httpapi.Owner, error) {
			if u := r.Header.Get("X-User"); u != "" {
				return httpapi.Owner{UserID: u}, nil
			}
			return httpapi.Owner{}, errors.New("log in first")
		},
	})
	require.NoError(t, err)
	h = validated(t, "/v1", h)
	r := httptest.NewRequest("POST", "/v1/api_keys", strings.NewReader(`{"api_key":{"name":"x","key_type":"private"}}`))
	r.Header.Set("X-User", "carol")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, 201, w.Code, w.Body.String())
	page, err := m.List(t.Context(), "carol", apikeys.ListParams{})
	require.NoError(t, err)
	assert.Len(t, page.Keys, 1)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/api_keys", nil))
	assert.Equal(t, 401, w.Code)
	assert.Contains(t, w.Body.String(), "authentication required")
	assert.NotContains(t, w.Body.String(), "log in first", "the host's error is not the client's to read")

	for name, tt := range map[string]struct {
		m   *apikeys.Manager
		cfg *httpapi.Config
	}{
		"nil Manager":          {nil, nil},
		"prefix ends with /":   {m, &httpapi.Config{Prefix: "v1/"}},
		"negative body bound":  {m, &httpapi.Config{MaxBodyBytes: -1}},
		"negative grace bound": {m, &httpapi.Config{MaxGracePeriod: -time.Second}},
	} {
		_, err := httpapi.New(tt.m, tt.cfg)
		assert.Error(t, err, name)
	}
}

// downStore is memstore whose List fails, as when the server is down.
type downStore struct{ *memstore.Store }

func (downStore) List(context.Context, string, apikeys.ListQuery) ([]apikeys.Record, error) {
	return nil, errors.New("dial tcp: connection refused")
}

func TestStoreFailure(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(downStore{memstore.New()}, nil)
	require.NoError(t, err)
	h, err := httpapi.New(m, &httpapi.Config{Owner: func(*http.Request) (httpapi.Owner, error) { return httpapi.Owner{UserID: "u"}, nil }})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	validated(t, "", h).ServeHTTP(w, httptest.NewRequest("GET", "/api_keys", nil))
	assert.Equal(t, 503, w.Code)
	assert.NotContains(t, w.Body.String(), "refused", "store details stay in the log")
}
