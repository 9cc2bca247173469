package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/middleware"
)

// BenchmarkEndToEnd serves a small handler on loopback and calls it from
// parallel clients, bare and behind the middleware (public key with origin
// and assistant restrictions, memstore). The goal: the middleware costs at
// most 10% of the bare handler's requests per second, i.e. ns/op of
// "middleware" within 1.10x of "bare".
func BenchmarkEndToEnd(b *testing.B) {
	m, err := apikeys.New(memstore.New(), nil)
	if err != nil {
		b.Fatal(err)
	}
	nk, err := m.Create(context.Background(), apikeys.CreateParams{
		Type: apikeys.Public, Name: "web", UserID: "u",
		AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst-1"},
	})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := middleware.New(m, &middleware.Config{
		Resource: func(r *http.Request) (string, bool, error) { return r.Header.Get("X-Assistant"), false, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", hello},
		{"middleware", mw.Handler(hello)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", srv.URL, nil)
					req.Header.Set("Authorization", "Bearer "+nk.Value)
					req.Header.Set("Origin", "https://app.example.com")
					req.Header.Set("X-Assistant", "asst-1")
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
		})
	}
}
