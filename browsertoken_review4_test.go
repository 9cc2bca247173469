package apikeys_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestReview4TokenNonCanonicalSignatureRefused: the last character of a
// token's 86-character signature carries 2 bits and 4 zero padding bits.
// A lenient base64 decoder accepts the 15 other characters with the same 2
// bits, so one minted token is 16 distinct strings that all verify: each a
// separate entry in the verified-token cache, and a way around anything
// that tells tokens apart by their text (logs, deny lists). Only the
// canonical encoding may verify (jwt.WithStrictDecoding).
func TestReview4TokenNonCanonicalSignatureRefused(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{})
	_, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err, "the control: the token as minted")
	last := strings.IndexByte(alphabet, tok.Token[len(tok.Token)-1])
	require.Zero(t, last&0xf, "the canonical encoding has zero padding bits")
	tests := []struct {
		name string
		bits int
	}{
		{"padding bit 0 set", 1},
		{"padding bit 1 set", 2},
		{"padding bit 2 set", 4},
		{"padding bit 3 set", 8},
		{"all padding bits set", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			variant := tok.Token[:len(tok.Token)-1] + string(alphabet[last|tt.bits])
			require.NotEqual(t, tok.Token, variant)
			_, err := e.m.Authorize(t.Context(), variant, apikeys.Request{})
			assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "a non-canonical encoding of a minted token verifies")
		})
	}
}

// TestReview4MintedTokenIsAccepted: MintToken must never return a token
// that Authorize refuses. A parent with long (valid, default-bounded)
// lists mints a token longer than maxTokenLen (64 KiB): MintToken
// succeeds, and the token is an invalid key everywhere.
func TestReview4MintedTokenIsAccepted(t *testing.T) {
	t.Parallel()
	assistants := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			id := fmt.Sprintf("asst-%d-", i)
			out[i] = id + strings.Repeat("x", size-len(id))
		}
		return out
	}
	tests := []struct {
		name   string
		parent []string // the parent's allowed_assistants
		token  *[]string
	}{
		{"the parent's own 1000 assistants of 64 bytes", assistants(1000, 64), nil},
		{"500 assistants of 128 bytes named at mint", assistants(500, apikeys.MaxAssistantIDLen), new(assistants(500, apikeys.MaxAssistantIDLen))},
		{"control: a few assistants", assistants(3, 64), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTokenEnv(t, nil, apikeys.CreateParams{AllowedAssistants: tt.parent})
			tok, err := e.m.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: e.parent.ID, AllowedAssistants: tt.token})
			if err != nil {
				return // refusing at mint is a fine answer
			}
			_, err = e.m.Authorize(t.Context(), tok.Token, apikeys.Request{AssistantID: tt.parent[0]})
			assert.NoError(t, err, "MintToken returned a %d-byte token that Authorize refuses", len(tok.Token))
		})
	}
}

// TestReview4TokenAcrossInstancesWithClockSkew: a token minted on one
// instance at 12:00:00.300 has nbf 12:00:00 (NumericDate truncates to
// the second) and no leeway, so another instance of the same service
// whose clock is 0.5 s behind answers 401 for it, as for an invalid key,
// until its clock passes the second. Browsers use a token right after the
// backend mints it, on whatever instance the load balancer picks. The
// expiry makes tokens time-bound already: nbf (or a leeway on it) is not
// needed.
func TestReview4TokenAcrossInstancesWithClockSkew(t *testing.T) {
	t.Parallel()
	minted := time.Date(2026, 6, 1, 12, 0, 0, 300_000_000, time.UTC)
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	store := memstore.New()
	a, err := apikeys.New(store, &apikeys.Config{Now: func() time.Time { return minted }, TokenKeys: []apikeys.TokenKey{tk}})
	require.NoError(t, err)
	parent, err := a.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "alice"})
	require.NoError(t, err)
	tok, err := a.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: parent.ID, TTL: 10 * time.Minute})
	require.NoError(t, err)
	tests := []struct {
		name   string
		behind time.Duration
	}{
		{"same clock", 0},
		{"100 ms behind", 100 * time.Millisecond},
		{"500 ms behind", 500 * time.Millisecond},
		{"2 s behind", 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := minted.Add(-tt.behind)
			b, err := apikeys.New(store, &apikeys.Config{Now: func() time.Time { return now }, TokenKeys: []apikeys.TokenKey{tk}, LastUsedInterval: -1})
			require.NoError(t, err)
			_, err = b.Authorize(t.Context(), tok.Token, apikeys.Request{})
			assert.NoError(t, err, "a fresh token is refused by an instance whose clock is %v behind", tt.behind)
		})
	}
}
