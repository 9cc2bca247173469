package keytest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/apikeys"
)

// FullyRestricted creates, through m, a public key with every restriction
// that does not spend (origins, one a wildcard; assistants; transient;
// scopes, one a wildcard; client addresses; an expiry a day ahead), and
// returns it with a request it admits: the key of the allocation tests and
// of the floor benchmarks (issue 17).
func FullyRestricted(tb testing.TB, m *apikeys.Manager) (apikeys.NewKey, apikeys.Request) {
	tb.Helper()
	nk, err := m.Create(context.Background(), apikeys.CreateParams{
		Type: apikeys.Public, Name: "web", UserID: "user-1",
		AllowedOrigins:     []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants:  []string{"asst-1", "asst-2", "asst-3"},
		TransientAssistant: true,
		Scopes:             []string{"assistants:read", "calls:*"},
		AllowedIPs:         []string{"10.0.0.0/8", "192.0.2.0/24"},
		ExpiresAt:          time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return nk, apikeys.Request{
		Origin: "https://app.example.com", AssistantID: "asst-3", Transient: true,
		Scopes: []string{"calls:write"}, ClientIP: netip.MustParseAddr("192.0.2.7"),
	}
}
