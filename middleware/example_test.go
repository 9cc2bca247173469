package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// A service's routes: the REST endpoints for keys, and a calls route that
// names its assistant and needs calls:write, behind one proxy.
func ExampleMiddleware_Protect() {
	m, _ := apikeys.New(memstore.New(), nil)
	mw, _ := middleware.New(m, &middleware.Config{
		// Which assistant a request wants: only your routes know.
		Resource:       func(r *http.Request) (string, bool, error) { return r.PathValue("assistant"), false, nil },
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	rest, _ := httpapi.New(m, nil)
	mux := http.NewServeMux()
	keys := mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
	mux.Handle("/api_keys", keys)
	mux.Handle("/api_keys/", keys)
	calls := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.Handle("POST /assistants/{assistant}/calls", mw.Protect(middleware.Route{Scopes: middleware.Scopes("calls:write")}, calls))

	ctx := context.Background()
	widget, _ := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "widget", UserID: "u",
		AllowedAssistants: []string{"a1"}, Scopes: []string{"calls:write"}})
	office, _ := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "office", UserID: "u",
		AllowedIPs: []string{"203.0.113.0/24"}})
	do := func(method, path, key, forwardedFor string) int {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "10.0.0.2:5000" // the proxy
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("X-Forwarded-For", forwardedFor)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	fmt.Println("widget calls a1:", do("POST", "/assistants/a1/calls", widget.Value, "198.51.100.7"))
	fmt.Println("widget calls a2:", do("POST", "/assistants/a2/calls", widget.Value, "198.51.100.7"))
	fmt.Println("widget lists keys:", do("GET", "/api_keys", widget.Value, "198.51.100.7"))
	fmt.Println("office key from the office:", do("GET", "/api_keys", office.Value, "203.0.113.9"))
	fmt.Println("office key from elsewhere:", do("GET", "/api_keys", office.Value, "198.51.100.7"))
	// Output:
	// widget calls a1: 201
	// widget calls a2: 403
	// widget lists keys: 403
	// office key from the office: 200
	// office key from elsewhere: 403
}
