package httpapi_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
)

// newTokenEnv is newEnv on a Manager with cfg (TokenKeys: one fresh key
// when nil), with the JWKS mounted outside the middleware as the package
// documentation shows.
func newTokenEnv(t *testing.T, cfg *apikeys.Config) *env {
	t.Helper()
	if cfg == nil {
		tk, err := apikeys.NewTokenKey()
		require.NoError(t, err)
		cfg = &apikeys.Config{TokenKeys: []apikeys.TokenKey{tk}}
	}
	return newEnvWith(t, memstore.New(), cfg, nil)
}

// fixedClock returns a Config.Now that stays at the current second.
func fixedClock() (time.Time, func() time.Time) {
	now := time.Now().UTC().Truncate(time.Second)
	return now, func() time.Time { return now }
}

func TestMintToken(t *testing.T) {
	t.Parallel()
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	now, clock := fixedClock()
	e := newTokenEnv(t, &apikeys.Config{TokenKeys: []apikeys.TokenKey{tk}, Now: clock})

	res := e.do(e.alice.Value, "POST", "/api_keys/tokens",
		`{"token":{"allowed_origins":["HTTPS://App.Example.com"],"allowed_assistants":["a1"],"transient_assistant":false,"ttl_seconds":600}}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	assert.Equal(t, map[string]any{"code": float64(201), "message": "Success"}, res.body["status"])
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	d := res.data()
	assert.Equal(t, e.alice.ID.String(), d["key_id"])
	assert.Equal(t, now.Add(600*time.Second).Format(time.RFC3339), d["expires_at"])
	token, _ := d["token"].(string)
	require.True(t, apikeys.LooksLikeToken(token), token)

	k, err := e.m.Authorize(t.Context(), token, apikeys.Request{Origin: "https://app.example.com", AssistantID: "a1"})
	require.NoError(t, err)
	assert.True(t, k.IsToken())
	assert.Equal(t, apikeys.Public, k.Type)
	assert.Equal(t, e.alice.ID, k.ID)
	assert.Equal(t, "alice", k.UserID)
	assert.Equal(t, []string{"https://app.example.com"}, k.AllowedOrigins)
	for _, tt := range []struct {
		req  apikeys.Request
		want error
	}{
		{apikeys.Request{Origin: "https://evil.example.com", AssistantID: "a1"}, apikeys.ErrOriginNotAllowed},
		{apikeys.Request{AssistantID: "a1"}, apikeys.ErrOriginNotAllowed},
		{apikeys.Request{Origin: "https://app.example.com", AssistantID: "a2"}, apikeys.ErrAssistantNotAllowed},
		{apikeys.Request{Origin: "https://app.example.com", AssistantID: "a1", Transient: true}, apikeys.ErrTransientNotAllowed},
		{apikeys.Request{Origin: "https://app.example.com", AssistantID: "a1", RequirePrivate: true}, apikeys.ErrPrivateKeyRequired},
	} {
		_, err := e.m.Authorize(t.Context(), token, tt.req)
		assert.ErrorIs(t, err, tt.want, "%+v", tt.req)
	}

	// No body, or an empty token: the key's own restrictions, the default
	// time to live.
	for _, body := range []string{"", `{"token":{}}`} {
		res = e.do(e.alice.Value, "POST", "/api_keys/tokens", body)
		require.Equal(t, http.StatusCreated, res.code, res.raw)
		assert.Equal(t, now.Add(apikeys.DefaultTokenTTL).Format(time.RFC3339), res.data()["expires_at"])
		k, err = e.m.Authorize(t.Context(), res.data()["token"].(string), apikeys.Request{Origin: "https://any.example.com", Transient: true})
		require.NoError(t, err, body)
		assert.Empty(t, k.AllowedOrigins)
	}

	// key_id may name the authenticating key, and only that one.
	res = e.do(e.alice.Value, "POST", "/api_keys/tokens", `{"token":{"key_id":"`+e.alice.ID.String()+`"}}`)
	assert.Equal(t, http.StatusCreated, res.code, res.raw)
	res = e.do(e.alice.Value, "POST", "/api_keys/tokens", `{"token":{"key_id":"`+e.alicePub.ID.String()+`"}}`)
	assert.Equal(t, http.StatusForbidden, res.code, res.raw)
	assert.Equal(t, "key_id", res.body["restriction"])
}

// TestMintTokenNarrows: a token never has more than its key.
func TestMintTokenNarrows(t *testing.T) {
	t.Parallel()
	now, clock := fixedClock()
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	e := newTokenEnv(t, &apikeys.Config{TokenKeys: []apikeys.TokenKey{tk}, Now: clock})
	create := func(p apikeys.CreateParams) apikeys.NewKey {
		p.Type, p.Name, p.UserID = apikeys.Private, "k", "alice"
		nk, err := e.m.Create(t.Context(), p)
		require.NoError(t, err)
		return nk
	}
	scoped := create(apikeys.CreateParams{Scopes: []string{apikeys.ScopeKeysWrite, "calls:read"}})
	plain := create(apikeys.CreateParams{}) // transient assistants not allowed
	hour := create(apikeys.CreateParams{ExpiresAt: now.Add(time.Minute)})
	readOnly := create(apikeys.CreateParams{Scopes: []string{apikeys.ScopeKeysRead, "calls:read"}})

	tests := []struct {
		name        string
		key         string
		body        string
		status      int
		restriction string
	}{
		{"scope the key lacks", scoped.Value, `{"token":{"scopes":["calls:write"]}}`, 403, "scopes"},
		{"no scopes from a scoped key", scoped.Value, `{"token":{"scopes":[]}}`, 403, "scopes"},
		{"transient from a key without", plain.Value, `{"token":{"transient_assistant":true}}`, 403, "transient_assistant"},
		{"key without api_keys:write", readOnly.Value, `{"token":{}}`, 403, "scopes"},
		{"within", scoped.Value, `{"token":{"scopes":["calls:read"]}}`, 201, ""},
	}
	for _, tt := range tests {
		res := e.do(tt.key, "POST", "/api_keys/tokens", tt.body)
		require.Equal(t, tt.status, res.code, "%s: %s", tt.name, res.raw)
		if tt.restriction != "" {
			assert.Equal(t, tt.restriction, res.body["restriction"], tt.name)
		}
	}

	// The scoped key's own scopes when the body names none.
	res := e.do(scoped.Value, "POST", "/api_keys/tokens", "")
	require.Equal(t, 201, res.code, res.raw)
	k, err := e.m.Authorize(t.Context(), res.data()["token"].(string), apikeys.Request{Scopes: []string{"calls:read"}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{apikeys.ScopeKeysWrite, "calls:read"}, k.Scopes)

	// A token expires with its key.
	res = e.do(hour.Value, "POST", "/api_keys/tokens", `{"token":{"ttl_seconds":600}}`)
	require.Equal(t, 201, res.code, res.raw)
	assert.Equal(t, now.Add(time.Minute).Format(time.RFC3339), res.data()["expires_at"])
}

func TestMintTokenBadInput(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil) // MaxTokenTTL: the default hour
	tests := []struct {
		name, body string
		errs       []string
	}{
		{"ttl above the maximum", `{"token":{"ttl_seconds":3601}}`, []string{"ttl_seconds: must be 1 to 3600"}},
		{"ttl far above", `{"token":{"ttl_seconds":9223372036854775807}}`, []string{"ttl_seconds: must be 1 to 3600"}},
		{"ttl 0", `{"token":{"ttl_seconds":0}}`, []string{"ttl_seconds: must be 1 to 3600"}},
		{"ttl negative", `{"token":{"ttl_seconds":-5}}`, []string{"ttl_seconds: must be 1 to 3600"}},
		{"ttl fraction", `{"token":{"ttl_seconds":1.5}}`, []string{"ttl_seconds: must be a whole number of seconds"}},
		{"ttl string", `{"token":{"ttl_seconds":"600"}}`, []string{"ttl_seconds: must be a whole number of seconds"}},
		{"ttl null", `{"token":{"ttl_seconds":null}}`, []string{"ttl_seconds: must be a whole number of seconds"}},
		{"bad origin", `{"token":{"allowed_origins":["*"]}}`, []string{"allowed_origins[0]:"}},
		{"bad scope", `{"token":{"scopes":["nope"]}}`, []string{"scopes[0]:"}},
		{"wrong types", `{"token":{"allowed_origins":"x","transient_assistant":"yes","scopes":null}}`,
			[]string{"allowed_origins: must be an array of strings", "scopes: must be an array of strings", "transient_assistant: must be true or false"}},
		{"unknown member", `{"token":{"ttl":600}}`, []string{`"ttl": unknown field`}},
		{"expires_at", `{"token":{"expires_at":"2099-01-01T00:00:00Z"}}`, []string{"expires_at: cannot be set; use ttl_seconds"}},
		{"a key's own member", `{"token":{"rate_limit":null}}`, []string{"rate_limit: cannot be set"}},
		{"bad key_id", `{"token":{"key_id":"x"}}`, []string{"key_id: must be an API key id"}},
		{"missing wrapper", `{"ttl_seconds":600}`, []string{`"ttl_seconds": unknown field; fields go inside "token"`, "token: required"}},
		{"api_key wrapper", `{"api_key":{}}`, []string{`"api_key": unknown field; fields go inside "token"`, "token: required"}},
		{"null wrapper", `{"token":null}`, []string{"token: must be an object"}},
		{"malformed JSON", `{"token":`, []string{"body: invalid JSON"}},
		{"not an object", `[]`, []string{"body: must be a JSON object"}},
	}
	for _, tt := range tests {
		res := e.do(e.alice.Value, "POST", "/api_keys/tokens", tt.body)
		require.Equal(t, http.StatusBadRequest, res.code, "%s: %s", tt.name, res.raw)
		errs := res.errs()
		require.Len(t, errs, len(tt.errs), "%s: %v", tt.name, errs)
		for i, want := range tt.errs {
			assert.True(t, strings.HasPrefix(errs[i], want), "%s: %q does not start with %q", tt.name, errs[i], want)
		}
	}
}

// TestTokenCannotManage: a token acts as a public key, so the REST API
// (behind Private: true) refuses it, and it cannot mint tokens.
func TestTokenCannotManage(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys/tokens", "")
	require.Equal(t, 201, res.code, res.raw)
	token := res.data()["token"].(string)
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/api_keys", ""},
		{"GET", "/api_keys/" + e.alice.ID.String(), ""},
		{"POST", "/api_keys", `{"api_key":{"name":"x","key_type":"public"}}`},
		{"POST", "/api_keys/tokens", ""},
		{"DELETE", "/api_keys/" + e.alice.ID.String(), ""},
	} {
		res := e.do(token, tt.method, tt.path, tt.body)
		assert.Equal(t, http.StatusForbidden, res.code, "%s %s: %s", tt.method, tt.path, res.raw)
		assert.Equal(t, "key_type", res.body["restriction"], tt.method+" "+tt.path)
	}
	assert.Equal(t, 3, e.count("alice")+e.count("bob"))

	// Even reaching the handler, as with a custom Owner and no
	// middleware, a token in the context cannot mint.
	h, err := httpapi.New(e.m, &httpapi.Config{Owner: func(*http.Request) (httpapi.Owner, error) { return httpapi.Owner{UserID: "alice"}, nil }})
	require.NoError(t, err)
	h = validated(t, "", h)
	k, err := e.m.Authorize(t.Context(), token, apikeys.Request{Transient: true})
	require.NoError(t, err)
	r := httptest.NewRequest("POST", "/api_keys/tokens", nil)
	r = r.WithContext(apikeys.NewContext(r.Context(), k))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), `"restriction":"key"`)
}

// TestMintTokenWithCustomOwner: with Config.Owner and no key in the
// context, key_id names the parent, which must be the user's.
func TestMintTokenWithCustomOwner(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	h, err := httpapi.New(e.m, &httpapi.Config{Owner: func(*http.Request) (httpapi.Owner, error) { return httpapi.Owner{UserID: "alice"}, nil }})
	require.NoError(t, err)
	h = validated(t, "", h)
	mint := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api_keys/tokens", strings.NewReader(body)))
		return w
	}
	w := mint(`{"token":{"key_id":"` + e.alice.ID.String() + `"}}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	w = mint(`{"token":{}}`)
	assert.Equal(t, 400, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "key_id: is required")
	w = mint(`{"token":{"key_id":"` + e.bob.ID.String() + `"}}`)
	assert.Equal(t, 404, w.Code, "another user's key is not found: %s", w.Body.String())
	w = mint(`{"token":{"key_id":"` + e.alicePub.ID.String() + `"}}`)
	assert.Equal(t, 400, w.Code, "a public key mints nothing: %s", w.Body.String())
}

// TestTokensDisabled: without Config.TokenKeys the token endpoints are
// 404, as if they were not there.
func TestTokensDisabled(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, &apikeys.Config{})
	for _, tt := range []struct{ key, method, path, body string }{
		{e.alice.Value, "POST", "/api_keys/tokens", `{"token":{"ttl_seconds":600}}`},
		{e.alice.Value, "POST", "/api_keys/tokens", `{"token":{"nonsense":1}}`},
		{"", "GET", "/api_keys/tokens/jwks.json", ""},
		{e.alice.Value, "GET", "/api_keys/tokens/jwks.json", ""},
	} {
		res := e.do(tt.key, tt.method, tt.path, tt.body)
		assert.Equal(t, http.StatusNotFound, res.code, "%s %s: %s", tt.method, tt.path, res.raw)
		assert.Equal(t, "browser tokens are not enabled on this service", res.body["error"])
	}
}

func TestTokenRoutesMethods(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{"GET", "/api_keys/tokens", "POST"},
		{"PUT", "/api_keys/tokens", "POST"},
		{"DELETE", "/api_keys/tokens", "POST"},
		{"PATCH", "/api_keys/tokens", "POST"},
		{"POST", "/api_keys/tokens/jwks.json", "GET, HEAD"},
		{"PATCH", "/api_keys/" + e.alice.ID.String(), "DELETE, GET, HEAD, PUT"},
	} {
		res := e.do(e.alice.Value, tt.method, tt.path, "")
		assert.Equal(t, 405, res.code, "%s %s: %s", tt.method, tt.path, res.raw)
		assert.Equal(t, tt.allow, res.header.Get("Allow"), tt.method+" "+tt.path)
	}
	// Behind the middleware, only GET and HEAD of the JWKS skip it.
	res := e.do("", "POST", "/api_keys/tokens/jwks.json", "")
	assert.Equal(t, 401, res.code, res.raw)
	res = e.do("", "POST", "/api_keys/tokens", "")
	assert.Equal(t, 401, res.code, res.raw)
	res = e.do("", "GET", "/api_keys", "")
	assert.Equal(t, 401, res.code, res.raw)

	w := httptest.NewRecorder()
	validated(t, "", httpapi.JWKS(e.m)).ServeHTTP(w, httptest.NewRequest("DELETE", "/jwks.json", nil))
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
}

// jwkSet is what a verifying service reads.
type jwkSet struct {
	Keys []struct {
		Kty, Crv, X, Kid, Alg, Use string
	} `json:"keys"`
}

// verifier builds, from a served JWK Set alone, what another service
// needs to verify tokens: a jwt.Keyfunc over Ed25519 public keys.
func verifier(t *testing.T, body []byte) jwt.Keyfunc {
	t.Helper()
	var set jwkSet
	require.NoError(t, json.Unmarshal(body, &set))
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		require.Equal(t, "OKP", k.Kty)
		require.Equal(t, "Ed25519", k.Crv)
		require.Equal(t, "EdDSA", k.Alg)
		require.Equal(t, "sig", k.Use)
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		require.NoError(t, err)
		require.Len(t, x, ed25519.PublicKeySize)
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}

// TestJWKS: another service verifies a minted token with nothing but the
// served JWK Set.
func TestJWKS(t *testing.T) {
	t.Parallel()
	current, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	previous, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	previous.PrivateKey = nil // kept to verify, as in a rotation
	e := newTokenEnv(t, &apikeys.Config{TokenKeys: []apikeys.TokenKey{current, previous}})

	res := e.do(e.alice.Value, "POST", "/api_keys/tokens", `{"token":{"allowed_origins":["https://app.example.com"]}}`)
	require.Equal(t, 201, res.code, res.raw)
	token := res.data()["token"].(string)

	// No key: the JWKS is mounted outside the middleware.
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest("GET", "/api_keys/tokens/jwks.json", nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "application/jwk-set+json", w.Header().Get("Content-Type"))
	assert.Equal(t, "public, max-age=300", w.Header().Get("Cache-Control"))
	body := w.Body.Bytes()

	var set jwkSet
	require.NoError(t, json.Unmarshal(body, &set))
	require.Len(t, set.Keys, 2)
	assert.Equal(t, current.ID, set.Keys[0].Kid, "the signing key first")
	assert.Equal(t, previous.ID, set.Keys[1].Kid)
	var raw map[string][]map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	assert.Len(t, raw["keys"][0], 6, "no member beyond kty, crv, x, kid, alg, use: %s", body)
	assert.NotContains(t, string(body), `"d"`, "never a private part")

	var claims jwt.RegisteredClaims
	parsed, err := jwt.ParseWithClaims(token, &claims, verifier(t, body), jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithExpirationRequired())
	require.NoError(t, err)
	require.True(t, parsed.Valid)
	assert.Equal(t, e.alice.ID.String(), claims.Subject)
	assert.Equal(t, current.ID, parsed.Header["kid"])

	// A token signed by another key does not verify with the set.
	other, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	m2, err := apikeys.New(memstore.New(), &apikeys.Config{TokenKeys: []apikeys.TokenKey{{ID: current.ID, PrivateKey: other.PrivateKey}}})
	require.NoError(t, err)
	nk, err := m2.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
	require.NoError(t, err)
	forged, err := m2.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: nk.ID})
	require.NoError(t, err)
	_, err = jwt.Parse(forged.Token, verifier(t, body), jwt.WithValidMethods([]string{"EdDSA"}))
	assert.True(t, errors.Is(err, jwt.ErrTokenSignatureInvalid), "%v", err)

	// HEAD: the headers without the body.
	w = httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest("HEAD", "/api_keys/tokens/jwks.json", nil))
	assert.Equal(t, 200, w.Code)
	assert.Empty(t, w.Body.Bytes())
	assert.Equal(t, "application/jwk-set+json", w.Header().Get("Content-Type"))

	// The REST handler answers the same behind the middleware, with a key.
	res = e.do(e.alice.Value, "GET", "/api_keys/tokens/jwks.json", "")
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, string(body), res.raw)
	assert.Equal(t, "public, max-age=300", res.header.Get("Cache-Control"))
	rest, err := httpapi.New(e.m, nil)
	require.NoError(t, err)
	w = httptest.NewRecorder()
	validated(t, "", rest).ServeHTTP(w, httptest.NewRequest("GET", "/api_keys/tokens/jwks.json", nil))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, body, w.Body.Bytes())
}

func TestJWKSNilManager(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { httpapi.JWKS(nil) })
}
