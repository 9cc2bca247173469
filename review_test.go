package apikeys_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// Security review of issue 12.

// TestReviewAuthorizedKeyDoesNotAliasStore: the Key Authorize returns (the
// one the middleware hands to handlers) must be the caller's own. With
// memstore and no cache, its Scopes (and AllowedIPs) share their backing
// array with the stored record (memstore's clone copies only origins and
// assistants), so a handler that edits the slice in place (sorting,
// filtering with s[:0], redacting) rewrites the stored key's restrictions:
// here a calls:read key becomes an api_keys:write key.
func TestReviewAuthorizedKeyDoesNotAliasStore(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "reader", UserID: "alice", Scopes: []string{"calls:read"}})
	require.NoError(t, err)

	k, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{Scopes: []string{"calls:read"}})
	require.NoError(t, err)
	k.Scopes[0] = apikeys.ScopeKeysWrite // a handler's own edit of its copy

	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{Scopes: []string{apikeys.ScopeKeysWrite}})
	assert.ErrorIs(t, err, apikeys.ErrInsufficientScope, "editing the returned Key widened the stored key")
	got, err := m.Get(t.Context(), "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"calls:read"}, got.Scopes)
}

// TestReviewCreatedKeyDoesNotAliasStore: the same through the NewKey that
// Create returns.
func TestReviewCreatedKeyDoesNotAliasStore(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "office", UserID: "alice", AllowedIPs: []string{"203.0.113.7"}})
	require.NoError(t, err)
	nk.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0") // the caller's copy

	got, err := m.Get(t.Context(), "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.7/32", got.AllowedIPs[0].String(), "editing Create's answer widened the stored key")
}

// TestReviewPrivateKeyCannotMintBrowserPrivateKey: a private key without
// allowed_origins may be used from no browser (Authorize refuses it with
// any Origin), yet narrowing treats its empty list as "any origin", so it
// creates a private key that a page on any origin it names can use,
// management endpoints included. The child can do what the parent cannot.
func TestReviewPrivateKeyCannotMintBrowserPrivateKey(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	const evil = "https://evil.example"
	server, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "alice", AllowedAssistants: []string{"a1"}})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), server.Value, apikeys.Request{Origin: evil, AssistantID: "a1", RequirePrivate: true})
	require.ErrorIs(t, err, apikeys.ErrPrivateKeyInBrowser, "the parent is refused from the browser")

	ctx := apikeys.NewContext(t.Context(), server.Key)
	_, err = m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "browser", UserID: "alice", AllowedAssistants: []string{"a1"}, AllowedOrigins: []string{evil}})
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted, "a server-only private key minted a private key usable from %s", evil)
}
