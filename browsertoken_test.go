package apikeys_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// tokenEnv is a Manager with token keys, on a settable clock, and a
// private parent key of alice.
type tokenEnv struct {
	m      *apikeys.Manager
	s      *spendCounter
	clock  *clock
	signer apikeys.TokenKey
	parent apikeys.NewKey
}

func newTokenEnv(t *testing.T, cfg *apikeys.Config, parent apikeys.CreateParams) *tokenEnv {
	t.Helper()
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	e := &tokenEnv{s: &spendCounter{Store: memstore.New()}, clock: newClock(), signer: tk}
	var c apikeys.Config
	if cfg != nil {
		c = *cfg
	}
	c.Now = e.clock.now
	if c.TokenKeys == nil {
		c.TokenKeys = []apikeys.TokenKey{tk}
	}
	e.m, err = apikeys.New(e.s, &c)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.m.Close(context.Background())) })
	parent.Type, parent.Name, parent.UserID = apikeys.Private, "server", "alice"
	e.parent, err = e.m.Create(t.Context(), parent)
	require.NoError(t, err)
	return e
}

// mint mints a token from the parent, with the service's authority.
func (e *tokenEnv) mint(t *testing.T, p apikeys.TokenParams) apikeys.Token {
	t.Helper()
	p.KeyID = e.parent.ID
	tok, err := e.m.MintToken(t.Context(), "alice", p)
	require.NoError(t, err)
	return tok
}

var widget = apikeys.TokenParams{
	AllowedOrigins:    &[]string{"https://shop.example.com"},
	AllowedAssistants: &[]string{"asst-1"},
}

func TestTokenAuthorizes(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{Scopes: []string{"calls:write", "api_keys:write"}})
	tok := e.mint(t, apikeys.TokenParams{
		AllowedOrigins: widget.AllowedOrigins, AllowedAssistants: widget.AllowedAssistants,
		Scopes: &[]string{"calls:write"}, TTL: 5 * time.Minute,
	})
	assert.Equal(t, e.parent.ID, tok.KeyID)
	assert.Equal(t, e.clock.now().Add(5*time.Minute), tok.ExpiresAt)
	assert.True(t, apikeys.LooksLikeToken(tok.Token))
	assert.False(t, apikeys.ValidKeyFormat("ak", tok.Token))

	ok := apikeys.Request{Origin: "https://shop.example.com", AssistantID: "asst-1", Scopes: []string{"calls:write"}}
	k, err := e.m.Authorize(t.Context(), tok.Token, ok)
	require.NoError(t, err)
	assert.True(t, k.IsToken())
	assert.Equal(t, apikeys.Public, k.Type, "a token acts as a public key")
	assert.Equal(t, e.parent.ID, k.ID)
	assert.Equal(t, "alice", k.UserID)
	assert.Equal(t, tok.ExpiresAt, k.ExpiresAt)
	assert.Equal(t, []string{"https://shop.example.com"}, k.AllowedOrigins)

	for name, tt := range map[string]struct {
		req  apikeys.Request
		want error
	}{
		"other origin":     {apikeys.Request{Origin: "https://evil.example", AssistantID: "asst-1", Scopes: ok.Scopes}, apikeys.ErrOriginNotAllowed},
		"other assistant":  {apikeys.Request{Origin: ok.Origin, AssistantID: "asst-2", Scopes: ok.Scopes}, apikeys.ErrAssistantNotAllowed},
		"transient":        {apikeys.Request{Origin: ok.Origin, AssistantID: "asst-1", Transient: true, Scopes: ok.Scopes}, apikeys.ErrTransientNotAllowed},
		"scope not held":   {apikeys.Request{Origin: ok.Origin, AssistantID: "asst-1", Scopes: []string{"api_keys:write"}}, apikeys.ErrInsufficientScope},
		"private endpoint": {apikeys.Request{Origin: ok.Origin, AssistantID: "asst-1", Scopes: ok.Scopes, RequirePrivate: true}, apikeys.ErrPrivateKeyRequired},
	} {
		_, err := e.m.Authorize(t.Context(), tok.Token, tt.req)
		assert.ErrorIs(t, err, tt.want, name)
	}
}

// TestTokenMissingListsAreTheParents: a list the mint names not is the
// parent's own.
func TestTokenMissingListsAreTheParents(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{AllowedOrigins: []string{"https://admin.example.com"}, AllowedAssistants: []string{"asst-9"}})
	tok := e.mint(t, apikeys.TokenParams{})
	k, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{Origin: "https://admin.example.com", AssistantID: "asst-9"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://admin.example.com"}, k.AllowedOrigins)
	assert.Equal(t, []string{"asst-9"}, k.AllowedAssistants)
}

func TestTokenMintRefusesWidening(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, &apikeys.Config{MaxTokenTTL: time.Hour}, apikeys.CreateParams{
		AllowedOrigins: []string{"https://*.example.com"}, AllowedAssistants: []string{"asst-1"},
		Scopes: []string{"calls:write"}, ExpiresAt: time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC),
	})
	tests := []struct {
		name  string
		p     apikeys.TokenParams
		field string
		want  error
	}{
		{"origin outside", apikeys.TokenParams{AllowedOrigins: &[]string{"https://evil.example"}}, "allowed_origins[0]", apikeys.ErrNotPermitted},
		{"no origins", apikeys.TokenParams{AllowedOrigins: &[]string{}}, "allowed_origins", apikeys.ErrNotPermitted},
		{"other assistant", apikeys.TokenParams{AllowedAssistants: &[]string{"asst-2"}}, "allowed_assistants[0]", apikeys.ErrNotPermitted},
		{"transient", apikeys.TokenParams{TransientAssistant: new(true)}, "transient_assistant", apikeys.ErrNotPermitted},
		{"scope not held", apikeys.TokenParams{Scopes: &[]string{"api_keys:write"}}, "scopes[0]", apikeys.ErrNotPermitted},
		{"ttl above the maximum", apikeys.TokenParams{TTL: 2 * time.Hour}, "ttl_seconds", apikeys.ErrValidation},
		{"negative ttl", apikeys.TokenParams{TTL: -time.Second}, "ttl_seconds", apikeys.ErrValidation},
		{"bad origin", apikeys.TokenParams{AllowedOrigins: &[]string{"not an origin"}}, "allowed_origins[0]", apikeys.ErrValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.p.KeyID = e.parent.ID
			_, err := e.m.MintToken(t.Context(), "alice", tt.p)
			require.ErrorIs(t, err, tt.want)
			var fields []string
			for _, fe := range apikeys.FieldErrors(err) {
				fields = append(fields, fe.Field)
			}
			for _, pe := range apikeys.PermissionErrors(err) {
				fields = append(fields, pe.Field)
			}
			assert.Contains(t, fields, tt.field)
		})
	}
	// A TTL past the parent's expiry is cut to it.
	tok := e.mint(t, apikeys.TokenParams{TTL: time.Hour})
	assert.Equal(t, time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC), tok.ExpiresAt)
}

func TestTokenMintNeedsAUsablePrivateKey(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	public, err := e.m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "pub", UserID: "alice"})
	require.NoError(t, err)
	for name, tt := range map[string]struct {
		user string
		p    apikeys.TokenParams
		want error
	}{
		"public parent":    {"alice", apikeys.TokenParams{KeyID: public.ID}, apikeys.ErrValidation},
		"another's key":    {"bob", apikeys.TokenParams{KeyID: e.parent.ID}, apikeys.ErrNotFound},
		"no key named":     {"alice", apikeys.TokenParams{}, apikeys.ErrValidation},
		"tokens of a user": {"alice", apikeys.TokenParams{KeyID: e.parent.ID}, nil},
	} {
		_, err := e.m.MintToken(t.Context(), tt.user, tt.p)
		if tt.want == nil {
			assert.NoError(t, err, name)
		} else {
			assert.ErrorIs(t, err, tt.want, name)
		}
	}
	off, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	_, err = off.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: e.parent.ID})
	assert.ErrorIs(t, err, apikeys.ErrTokensDisabled)
}

// TestTokenCannotManageKeys: a token authorizes requests; it can never
// change keys or mint tokens, though it names its parent's id and owner.
func TestTokenCannotManageKeys(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{})
	k, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err)
	ctx := apikeys.NewContext(t.Context(), k)
	_, err = e.m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "alice"})
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted)
	_, err = e.m.Delete(ctx, "alice", e.parent.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted)
	_, err = e.m.MintToken(ctx, "alice", apikeys.TokenParams{})
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted)
	_, err = e.m.Authorize(t.Context(), e.parent.Value, apikeys.Request{})
	require.NoError(t, err, "the parent still works")
}

// forge signs claims as the test likes, with the given method and key.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	require.NoError(t, err)
	return s
}

// TestTokenForgeries: every malformed, forged, expired or orphaned token
// is ErrInvalidKey, the answer of any invalid key.
func TestTokenForgeries(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{TTL: time.Minute})
	now := e.clock.now()
	good := jwt.MapClaims{"iss": "ak", "sub": e.parent.ID.String(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for a, b := range good {
			c[a] = b
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	parts := strings.Split(tok.Token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	claims["origins"] = []string{"https://evil.example"}
	widened, err := json.Marshal(claims)
	require.NoError(t, err)
	other, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	pub := e.signer.PublicKey

	tests := map[string]string{
		"tampered payload":                    parts[0] + "." + base64.RawURLEncoding.EncodeToString(widened) + "." + parts[2],
		"tampered header":                     base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+e.signer.ID+`","typ":"JWT","x":1}`)) + "." + parts[1] + "." + parts[2],
		"alg none":                            forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, e.signer.ID, good),
		"HS256 with the public key as secret": forge(t, jwt.SigningMethodHS256, []byte(pub), e.signer.ID, good),
		"HS256 with the base64 public key":    forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), e.signer.ID, good),
		"unknown kid":                         forge(t, jwt.SigningMethodEdDSA, other.PrivateKey, other.ID, good),
		"signed by another key, our kid":      forge(t, jwt.SigningMethodEdDSA, other.PrivateKey, e.signer.ID, good),
		"no kid":                              forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, "", good),
		"another prefix":                      forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("iss", "xy")),
		"no issuer":                           forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("iss", nil)),
		"no expiry":                           forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("exp", nil)),
		"expired":                             forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("exp", now.Unix())),
		"not yet valid":                       forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("nbf", now.Add(time.Second).Unix())),
		"orphan: no such parent":              forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("sub", "0190b6f0-0000-7000-8000-000000000000")),
		"subject not an id":                   forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, with("sub", "alice")),
		"two parts":                           parts[0] + "." + parts[1],
		"garbage":                             "a.b.c",
	}
	for name, raw := range tests {
		_, err := e.m.Authorize(t.Context(), raw, apikeys.Request{})
		assert.ErrorIs(t, err, apikeys.ErrInvalidKey, name)
	}
	_, err = e.m.Authorize(t.Context(), forge(t, jwt.SigningMethodEdDSA, e.signer.PrivateKey, e.signer.ID, good), apikeys.Request{})
	require.NoError(t, err, "the control: well signed")
}

func TestTokenExpiryBoundary(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{TTL: time.Minute})
	_, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err, "verified, and now cached")
	e.clock.advance(time.Minute - time.Second)
	_, err = e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err, "a second before expiry")
	e.clock.advance(time.Second)
	_, err = e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "at expiry, cached or not")
}

// TestTokenFollowsItsParent: deleting, disabling, expiring, rotating with
// no grace or narrowing the parent stops its tokens.
func TestTokenFollowsItsParent(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(e *tokenEnv) error{
		"deleted": func(e *tokenEnv) error { _, err := e.m.Delete(context.Background(), "alice", e.parent.ID); return err },
		"disabled": func(e *tokenEnv) error {
			_, err := e.m.Update(context.Background(), "alice", e.parent.ID, apikeys.UpdateParams{Disabled: new(true)})
			return err
		},
		"rotated with no grace": func(e *tokenEnv) error {
			_, err := e.m.Rotate(context.Background(), "alice", e.parent.ID, 0)
			return err
		},
		"narrowed below the token": func(e *tokenEnv) error {
			_, err := e.m.Update(context.Background(), "alice", e.parent.ID, apikeys.UpdateParams{AllowedAssistants: &[]string{"asst-2"}})
			return err
		},
		"expired": func(e *tokenEnv) error {
			_, err := e.m.Update(context.Background(), "alice", e.parent.ID, apikeys.UpdateParams{ExpiresAt: new(e.clock.now().Add(time.Second))})
			e.clock.advance(time.Second)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, cached := range []bool{false, true} {
				cfg := &apikeys.Config{}
				if cached {
					cfg.Cache = &apikeys.CacheConfig{}
				}
				e := newTokenEnv(t, cfg, apikeys.CreateParams{})
				tok := e.mint(t, apikeys.TokenParams{AllowedAssistants: &[]string{"asst-1"}})
				req := apikeys.Request{AssistantID: "asst-1"}
				_, err := e.m.Authorize(t.Context(), tok.Token, req)
				require.NoError(t, err)
				require.NoError(t, change(e))
				_, err = e.m.Authorize(t.Context(), tok.Token, req)
				assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "cached %v", cached)
			}
		})
	}
}

// TestTokenSpendsItsParentsLimits: tokens spend the parent's rate limit
// and credits, and a refused token request spends nothing.
func TestTokenSpendsItsParentsLimits(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{RateLimit: rate(3, 3600), Credits: credits(100)})
	tok := e.mint(t, apikeys.TokenParams{AllowedOrigins: &[]string{"https://shop.example.com"}})
	from := apikeys.Request{Origin: "https://shop.example.com"}
	_, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{Origin: "https://evil.example"})
	require.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
	_, err = e.m.Authorize(t.Context(), e.parent.Value, apikeys.Request{})
	require.NoError(t, err, "the parent spends from the same counters")
	for range 2 {
		k, err := e.m.Authorize(t.Context(), tok.Token, from)
		require.NoError(t, err)
		assert.True(t, k.IsToken())
	}
	k, err := e.m.Authorize(t.Context(), tok.Token, from)
	require.ErrorIs(t, err, apikeys.ErrRateLimited)
	left, _ := k.CreditsLeft(e.clock.now())
	assert.Equal(t, int64(97), left)
}

// TestTokenSigningKeyRotation: the first key signs, the others verify.
func TestTokenSigningKeyRotation(t *testing.T) {
	t.Parallel()
	old := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := old.mint(t, apikeys.TokenParams{})
	next, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	retired := apikeys.TokenKey{ID: old.signer.ID, PublicKey: old.signer.PublicKey}
	m, err := apikeys.New(old.s, &apikeys.Config{Now: old.clock.now, TokenKeys: []apikeys.TokenKey{next, retired}})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err, "a token of the previous key still verifies")
	fresh, err := m.MintToken(t.Context(), "alice", apikeys.TokenParams{KeyID: old.parent.ID})
	require.NoError(t, err)
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(fresh.Token, ".")[0])
	require.NoError(t, err)
	assert.Contains(t, string(header), `"kid":"`+next.ID+`"`)
	assert.Equal(t, []string{next.ID, old.signer.ID}, []string{m.TokenPublicKeys()[0].ID, m.TokenPublicKeys()[1].ID})
	assert.Nil(t, m.TokenPublicKeys()[0].PrivateKey, "public keys only")

	_, err = old.m.Authorize(t.Context(), fresh.Token, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "a Manager without the new key does not verify its tokens")
}

func TestTokenKeysConfig(t *testing.T) {
	t.Parallel()
	k, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	other, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	for name, cfg := range map[string]apikeys.Config{
		"verify-only first":      {TokenKeys: []apikeys.TokenKey{{ID: "a", PublicKey: k.PublicKey}}},
		"bad kid":                {TokenKeys: []apikeys.TokenKey{{ID: "a b", PrivateKey: k.PrivateKey}}},
		"duplicate kid":          {TokenKeys: []apikeys.TokenKey{{ID: "a", PrivateKey: k.PrivateKey}, {ID: "a", PublicKey: other.PublicKey}}},
		"mismatched public":      {TokenKeys: []apikeys.TokenKey{{ID: "a", PrivateKey: k.PrivateKey, PublicKey: other.PublicKey}}},
		"short key":              {TokenKeys: []apikeys.TokenKey{{ID: "a", PrivateKey: ed25519.PrivateKey(k.PrivateKey[:10])}}},
		"max ttl above 24 hours": {TokenKeys: []apikeys.TokenKey{k}, MaxTokenTTL: 25 * time.Hour},
	} {
		_, err := apikeys.New(memstore.New(), &cfg)
		assert.Error(t, err, name)
	}
}

// TestTokenTokensOffAreInvalidKeys: without TokenKeys, a token is an
// invalid key like any other.
func TestTokensOffAreInvalidKeys(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{})
	off, err := apikeys.New(e.s, nil)
	require.NoError(t, err)
	_, err = off.Authorize(t.Context(), tok.Token, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey)
}

// TestTokenWithCachedParentReadsNoStore: a token whose parent is in the
// verification cache is authorized without a store read.
func TestTokenWithCachedParentReadsNoStore(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, &apikeys.Config{Cache: &apikeys.CacheConfig{}}, apikeys.CreateParams{})
	tok := e.mint(t, apikeys.TokenParams{})
	_, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
	require.NoError(t, err)
	before := e.s.gets.Load() + e.s.spends.Load()
	for range 5 {
		_, err := e.m.Authorize(t.Context(), tok.Token, apikeys.Request{})
		require.NoError(t, err)
	}
	assert.Equal(t, before, e.s.gets.Load()+e.s.spends.Load())
}

// FuzzToken: whatever a caller sends as a token, Authorize answers
// ErrInvalidKey or authorizes a token the Manager minted, never panics.
func FuzzToken(f *testing.F) {
	tk, err := apikeys.NewTokenKey()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return now }, TokenKeys: []apikeys.TokenKey{tk}})
	if err != nil {
		f.Fatal(err)
	}
	parent, err := m.Create(context.Background(), apikeys.CreateParams{Type: apikeys.Private, Name: "p", UserID: "u"})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := m.MintToken(context.Background(), "u", apikeys.TokenParams{KeyID: parent.ID, AllowedOrigins: &[]string{"https://a.example"}})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	for _, s := range []string{tok.Token, parts[0] + "." + parts[1] + ".", "a.b.c", "..", parts[0] + ".e30." + parts[2],
		"eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 100) + "." + strings.Repeat("B", 100) + "." + strings.Repeat("C", 86)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := m.Authorize(context.Background(), raw, apikeys.Request{Origin: "https://a.example"})
		if err != nil {
			if !errors.Is(err, apikeys.ErrInvalidKey) {
				t.Fatalf("Authorize(%q) = %v, want ErrInvalidKey or success", raw, err)
			}
			return
		}
		if !k.IsToken() || k.ID != parent.ID || raw != tok.Token && !strings.HasPrefix(raw, parts[0]+"."+parts[1]+".") {
			t.Fatalf("Authorize(%q) authorized %+v", raw, k)
		}
	})
}
