package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
)

// FuzzRequestBody feeds arbitrary bodies to create, update and mint:
// every answer is 2xx or 400 (403 for a token asking for more than its
// key, or naming another key), never 5xx, never a panic; a 400 stores
// nothing, and a success changes exactly what it says (minting stores
// nothing at all).
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"api_key":{"name":"x","key_type":"public"}}`,
		`{"api_key":{"name":"x","key_type":"private","allowed_origins":["https://*.example.com"],"allowed_assistants":["a"],"transient_assistant":true,"expires_at":"2099-01-01T00:00:00Z"}}`,
		`{"api_key":{"name":5}}`, `{"api_key":null}`, `{"api_key":{"expires_at":null}}`, `[]`, `{`, ``, `null`,
		`{"api_key":{"name":"x","key_type":"public","allowed_origins":["null","*","https://a.example/"]}}`,
		`{"api_key":{"key_value":"x","id":"y"}}`, `{"api_key":{"name":"\u0000"}}`, `{"api_key":{},"x":1}`,
		`{"api_key":{"name":"x","key_type":"public","rate_limit":{"limit":100,"window_seconds":60},"credits":{"remaining":1000,"refill":{"amount":1000,"interval_seconds":86400}}}}`,
		`{"api_key":{"rate_limit":null,"credits":{"remaining":1e3,"refill":null}}}`,
		`{"api_key":{"rate_limit":{"limit":-1,"window_seconds":9223372036854775807},"credits":{"remaining":5,"refill":{"amount":1}}}}`,
		// POST /api_keys/tokens
		`{"token":{"allowed_origins":["https://app.example.com"],"allowed_assistants":["a1"],"transient_assistant":false,"scopes":["calls:read"],"ttl_seconds":600}}`,
		`{"token":{}}`, `{"token":null}`, `{"token":{"ttl_seconds":0}}`, `{"token":{"ttl_seconds":1e400}}`, `{"token":{"ttl_seconds":-9223372036854775808}}`,
		`{"token":{"key_id":"00000000-0000-0000-0000-000000000000","expires_at":null}}`, `{"token":{"allowed_origins":["*"],"scopes":[1]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		store := memstore.New()
		m, err := apikeys.New(store, &apikeys.Config{TokenKeys: []apikeys.TokenKey{fuzzTokenKey}})
		if err != nil {
			t.Fatal(err)
		}
		rest, err := httpapi.New(m, &httpapi.Config{Owner: func(*http.Request) (httpapi.Owner, error) { return httpapi.Owner{UserID: "u"}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		h := validated(t, "", rest) // every answer matches the OpenAPI document
		seed, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "seed", UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := m.Get(t.Context(), "u", seed.ID)
		for _, target := range []struct{ method, path string }{
			{"POST", "/api_keys"},
			{"PUT", "/api_keys/" + seed.ID.String()},
		} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(target.method, target.path, strings.NewReader(body)))
			switch {
			case w.Code >= 500:
				t.Fatalf("%s %q: %d %s", target.method, body, w.Code, w.Body)
			case w.Code == 400 && target.method == "POST" && store.Len() != 1:
				t.Fatalf("a refused create stored a key: %q", body)
			case w.Code == 400 && target.method == "PUT":
				after, _ := m.Get(t.Context(), "u", seed.ID)
				if after.UpdatedAt != before.UpdatedAt || after.Name != before.Name {
					t.Fatalf("a refused update changed the key: %q", body)
				}
			case w.Code == 201 && store.Len() != 2:
				t.Fatalf("a create answered 201 but the store holds %d keys", store.Len())
			case w.Code != 200 && w.Code != 201 && w.Code != 400:
				t.Fatalf("%s %q: unexpected %d %s", target.method, body, w.Code, w.Body)
			}
		}

		// Minting, with a private key of the user in the context (the
		// seed key is public, and the store holds 1 or 2 keys by now).
		n := store.Len()
		priv, err := m.Create(apikeys.WithoutKey(t.Context()), apikeys.CreateParams{Type: apikeys.Private, Name: "minter", UserID: "u", Scopes: []string{apikeys.ScopeKeysWrite, "calls:read"}})
		if err != nil {
			t.Fatal(err)
		}
		pk, err := m.Get(t.Context(), "u", priv.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", "/api_keys/tokens", strings.NewReader(body))
		r = r.WithContext(apikeys.NewContext(r.Context(), pk))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code != 201 && w.Code != 400 && w.Code != 403:
			t.Fatalf("mint %q: unexpected %d %s", body, w.Code, w.Body)
		case store.Len() != n+1:
			t.Fatalf("minting stored something: %q", body)
		case w.Code == 201:
			var res struct {
				Data apikeys.Token `json:"data"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Authorize(t.Context(), res.Data.Token, apikeys.Request{}); err == nil && len(pk.Scopes) > 0 {
				t.Fatalf("mint %q: a token of a scoped key authorized a request naming no scope", body)
			} else if errors.Is(err, apikeys.ErrInvalidKey) {
				t.Fatalf("mint %q: the minted token is invalid", body)
			}
		}
	})
}

// fuzzTokenKey signs the fuzzed Managers' tokens.
var fuzzTokenKey = func() apikeys.TokenKey {
	k, err := apikeys.NewTokenKey()
	if err != nil {
		panic(err)
	}
	return k
}()
