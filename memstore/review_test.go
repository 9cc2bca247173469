package memstore_test

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestReviewReadsReturnCopies: the package promises "reads return copies,
// so callers can change what they get freely", but clone copies only
// AllowedOrigins and AllowedAssistants: Scopes and AllowedIPs (issue 12)
// are shared with the stored record, both with the record passed to
// Create/Update and with every record Get and List return.
func TestReviewReadsReturnCopies(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	rec := apikeys.Record{Version: 1}
	rec.ID = uuid.Must(uuid.NewV7())
	rec.UserID, rec.Type, rec.Name = "alice", apikeys.Private, "k"
	rec.Scopes = []string{"calls:read"}
	rec.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}
	require.NoError(t, s.Create(t.Context(), rec))
	rec.Scopes[0] = "api_keys:write" // the caller's record, after Create

	got, err := s.Get(t.Context(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"calls:read"}, got.Scopes, "Create kept the caller's slice")

	got.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0") // a reader's copy
	again, err := s.Get(t.Context(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.7/32", again.AllowedIPs[0].String(), "Get returned the stored slice")
}
