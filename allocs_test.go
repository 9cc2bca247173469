//go:build !race

// Allocation counts are deterministic, but race instrumentation allocates:
// these run without -race only.

package apikeys_test

import (
	"context"
	"testing"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestAuthorizeAllocatesNothing: memstore Authorize, and cached Authorize,
// of a key with every restriction that does not spend, allocate nothing
// (issue 17), nor do their refusals of a valid key.
func TestAuthorizeAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *apikeys.Config
	}{
		{"memstore", &apikeys.Config{}},
		{"cached", &apikeys.Config{Cache: &apikeys.CacheConfig{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := apikeys.New(memstore.New(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			key, req := fullyRestricted(t, m)
			ctx := context.Background()
			refused := req
			refused.AssistantID = "asst-9"
			for _, c := range []struct {
				name string
				req  apikeys.Request
				ok   bool
			}{{"allowed", req, true}, {"refused", refused, false}} {
				if _, err := m.Authorize(ctx, key, c.req); (err == nil) != c.ok {
					t.Fatalf("%s: %v", c.name, err)
				}
				if n := testing.AllocsPerRun(200, func() { _, _ = m.Authorize(ctx, key, c.req) }); n != 0 {
					t.Errorf("%s: %v allocations per Authorize, want 0", c.name, n)
				}
			}
		})
	}
}

// TestAuthorizeMalformedAllocatesNothing: garbage is refused without an
// allocation.
func TestAuthorizeMalformedAllocatesNothing(t *testing.T) {
	m, err := apikeys.New(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	key, req := fullyRestricted(t, m)
	bad := changeLast(key)
	if n := testing.AllocsPerRun(200, func() { _, _ = m.Authorize(context.Background(), bad, req) }); n != 0 {
		t.Errorf("%v allocations per refusal of garbage, want 0", n)
	}
}
