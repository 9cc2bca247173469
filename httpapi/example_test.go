package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// The REST endpoints behind the middleware: a user's private key creates a
// public key for their web page over HTTP.
func ExampleNew() {
	m, err := apikeys.New(memstore.New(), nil)
	if err != nil {
		panic(err)
	}
	mw, err := middleware.New(m, nil)
	if err != nil {
		panic(err)
	}
	rest, err := httpapi.New(m, nil) // the owner of the keys is the owner of the presenting key
	if err != nil {
		panic(err)
	}
	keys := mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
	mux := http.NewServeMux()
	mux.Handle("/api_keys", keys)
	mux.Handle("/api_keys/", keys)

	// A user's first private key comes from your service's own code (at
	// sign-up, say), with the service's authority: this API needs a key.
	admin, err := m.Create(context.Background(), apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "user-42"})
	if err != nil {
		panic(err)
	}
	body := `{"api_key":{"name":"web","key_type":"public","allowed_origins":["https://app.example.com"]}}`
	r := httptest.NewRequest("POST", "/api_keys", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+admin.Value)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)

	var res struct {
		Data apikeys.NewKey `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		panic(err)
	}
	fmt.Println(w.Code, res.Data.Type, res.Data.UserID, res.Data.AllowedOrigins, strings.HasPrefix(res.Data.Value, "ak_pk_"))
	// Output: 201 public user-42 [https://app.example.com] true
}
