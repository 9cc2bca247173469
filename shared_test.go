package apikeys_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
	"github.com/keyward/apikeys/memstore"
)

// fullyRestricted is keytest.FullyRestricted's value and request.
func fullyRestricted(t testing.TB, m *apikeys.Manager) (string, apikeys.Request) {
	t.Helper()
	nk, req := keytest.FullyRestricted(t, m)
	return nk.Value, req
}

// TestAuthorizeResultWritesChangeNothing: the lists of the Key Authorize
// returns are read-only views of the record it read in place (memstore,
// the cache), but a caller that writes into them anyway changes no later
// decision, nor the lists later callers get, nor what the store holds.
func TestAuthorizeResultWritesChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *apikeys.Config
	}{
		{"memstore", &apikeys.Config{}},
		{"cached", &apikeys.Config{Cache: &apikeys.CacheConfig{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New()
			m, err := apikeys.New(s, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			key, req := fullyRestricted(t, m)
			k, err := m.Authorize(ctx, key, req)
			if err != nil {
				t.Fatal(err)
			}
			want := k
			want.AllowedOrigins, want.AllowedAssistants = slices.Clone(k.AllowedOrigins), slices.Clone(k.AllowedAssistants)
			want.Scopes, want.AllowedIPs = slices.Clone(k.Scopes), slices.Clone(k.AllowedIPs)

			// Misuse: widen every list in place, and append past them.
			k.AllowedOrigins[0], k.AllowedAssistants[0] = "https://evil.example", "asst-evil"
			k.Scopes[0], k.AllowedIPs[0] = "*:*", netip.MustParsePrefix("0.0.0.0/0")
			_ = append(k.AllowedOrigins, "https://evil2.example")
			_ = append(k.AllowedAssistants, "asst-evil2")

			evil := req
			evil.Origin, evil.AssistantID, evil.ClientIP = "https://evil.example", "asst-evil", netip.MustParseAddr("203.0.113.1")
			for _, r := range []struct {
				name string
				mod  func(*apikeys.Request)
				want error
			}{
				{"origin", func(r *apikeys.Request) { r.Origin = "https://evil.example" }, apikeys.ErrOriginNotAllowed},
				{"assistant", func(r *apikeys.Request) { r.AssistantID = "asst-evil" }, apikeys.ErrAssistantNotAllowed},
				{"address", func(r *apikeys.Request) { r.ClientIP = netip.MustParseAddr("203.0.113.1") }, apikeys.ErrIPNotAllowed},
				{"scope", func(r *apikeys.Request) { r.Scopes = []string{"keys:write"} }, apikeys.ErrInsufficientScope},
			} {
				q := req
				r.mod(&q)
				if _, err := m.Authorize(ctx, key, q); !errors.Is(err, r.want) {
					t.Errorf("%s: got %v, want %v", r.name, err, r.want)
				}
			}
			again, err := m.Authorize(ctx, key, req)
			if err != nil {
				t.Fatal(err)
			}
			for name, eq := range map[string]bool{
				"origins":    slices.Equal(again.AllowedOrigins, want.AllowedOrigins),
				"assistants": slices.Equal(again.AllowedAssistants, want.AllowedAssistants),
				"scopes":     slices.Equal(again.Scopes, want.Scopes),
				"addresses":  slices.Equal(again.AllowedIPs, want.AllowedIPs),
			} {
				if !eq {
					t.Errorf("the next Authorize returned changed %s", name)
				}
			}
			rec, err := s.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rec.AllowedOrigins, want.AllowedOrigins) || !slices.Equal(rec.AllowedIPs, want.AllowedIPs) {
				t.Errorf("the store holds changed lists: %v %v", rec.AllowedOrigins, rec.AllowedIPs)
			}
		})
	}
}

// getCounter wraps memstore by embedding it, overriding Get only.
type getCounter struct {
	*memstore.Store
	gets atomic.Int64
}

func (s *getCounter) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

// TestViewerWrapperIsReadWithGet: a store that embeds memstore (and so has
// View promoted) is read with its own Get, never past it with View.
func TestViewerWrapperIsReadWithGet(t *testing.T) {
	s := &getCounter{Store: memstore.New()}
	m, err := apikeys.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	key, req := fullyRestricted(t, m)
	before := s.gets.Load()
	if _, err := m.Authorize(context.Background(), key, req); err != nil {
		t.Fatal(err)
	}
	if n := s.gets.Load() - before; n != 1 {
		t.Fatalf("Authorize made %d Gets through the wrapper, want 1", n)
	}
}
