package apikeys_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// benchSizes are the store sizes BenchmarkAuthorize runs at. Authorize
// must not slow down as the store grows.
var benchSizes = []int{1_000, 1_000_000}

// fill stores n keys of one user through the store directly (the Manager
// would spend most of the setup generating random secrets) and returns the
// store with one real key created through the Manager.
func benchManager(b *testing.B, n int) (*apikeys.Manager, string) {
	b.Helper()
	s := memstore.New()
	ctx := context.Background()
	for i := range n - 1 {
		rec := apikeys.Record{Version: 1}
		rec.ID = uuid.Must(uuid.NewV7())
		rec.Type = apikeys.Public
		rec.Name = "filler"
		rec.UserID = fmt.Sprint("user-", i%1000)
		rec.Digest = sha256.Sum256(rec.ID[:])
		if err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	m, err := apikeys.New(s, nil)
	if err != nil {
		b.Fatal(err)
	}
	nk, err := m.Create(ctx, apikeys.CreateParams{
		Type: apikeys.Public, Name: "web", UserID: "user-1",
		AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants: []string{"asst-1", "asst-2", "asst-3"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return m, nk.Value
}

// BenchmarkAuthorize compares Authorize on memstore (a public key with
// origin and assistant restrictions, the common browser case) with a
// baseline that does only what any key check must: SHA-256 of the key and
// one map lookup, in a map of the same size.
func BenchmarkAuthorize(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d/baseline", n), func(b *testing.B) {
			m := make(map[[32]byte]*apikeys.Record, n)
			var key string
			for i := range n {
				key = fmt.Sprintf("ak_pk_%072d", i)
				m[sha256.Sum256([]byte(key))] = &apikeys.Record{}
			}
			b.ReportAllocs()
			for b.Loop() {
				if m[sha256.Sum256([]byte(key))] == nil {
					b.Fatal("missing")
				}
			}
		})
		b.Run(fmt.Sprintf("keys=%d/authorize", n), func(b *testing.B) {
			m, key := benchManager(b, n)
			req := apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-3"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Authorize(ctx, key, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthorizeRefused measures the cheapest refusal: garbage that
// fails the format check without a store read.
func BenchmarkAuthorizeRefused(b *testing.B) {
	m, key := benchManager(b, 1)
	bad := changeLast(key)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Authorize(ctx, bad, apikeys.Request{}); err == nil {
			b.Fatal("accepted")
		}
	}
}
