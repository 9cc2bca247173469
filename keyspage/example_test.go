package keyspage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/keyspage"
	"github.com/keyward/apikeys/memstore"
)

// signedInUser stands for the host service's session: here, a header a
// proxy in front of it would set. A real service reads its own session
// cookie.
func signedInUser(r *http.Request) (httpapi.Owner, error) {
	user := r.Header.Get("X-Demo-User")
	if user == "" {
		return httpapi.Owner{}, fmt.Errorf("not signed in")
	}
	return httpapi.Owner{UserID: user}, nil
}

// Mounting the page in a service: one handler, under one path, with the
// service's own sign-in.
func Example() {
	m, _ := apikeys.New(memstore.New(), nil)
	defer m.Close(context.Background())

	page, err := keyspage.New(m, &keyspage.Config{Prefix: "/settings/api-keys", Owner: signedInUser, SignInURL: "/signin"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/settings/api-keys/", page)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	// Signed out: sent to sign in.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, _ := client.Get(srv.URL + "/settings/api-keys/")
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Location"))
	// Signed in: the page, whose script calls the API under the same path.
	req, _ := http.NewRequest("GET", srv.URL+"/settings/api-keys/", nil)
	req.Header.Set("X-Demo-User", "user-42")
	res, _ = client.Do(req)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.Contains(string(body), `data-api="/settings/api-keys/api/api_keys"`))
	// Output:
	// 303 /signin?next=%2Fsettings%2Fapi-keys%2F
	// 200 true
}
