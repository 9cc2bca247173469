package apikeys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Browser tokens
//
// A service keeps its private key on its server and gives a browser a
// short-lived token minted from it (MintToken): a JWT (RFC 7519) signed
// with Ed25519 by a key in Config.TokenKeys, naming the parent key and the
// restrictions the token carries, never more than the parent's. Authorize
// accepts a token wherever it accepts a key: it verifies the signature
// (EdDSA only: no "none", no HMAC or RSA) and the expiry, then that the
// parent key is still usable, then the token's restrictions, and spends
// the parent's rate limit and credits. Deleting, disabling or narrowing
// the parent stops its tokens as it stops the key. A token is a public
// key in effect (it cannot call private endpoints) and can never manage
// keys or mint tokens. Another service verifies tokens with the public
// keys alone (JWKS).

// DefaultTokenTTL is a token's time to live when TokenParams.TTL is 0.
const DefaultTokenTTL = 10 * time.Minute

// MaxTokenTTLLimit bounds Config.MaxTokenTTL.
const MaxTokenTTLLimit = 24 * time.Hour

// maxTokenLen bounds a token: MintToken refuses to mint a longer one, and
// Authorize does not parse one. 8 KiB, what proxies commonly allow for a
// header; a token with a few origins and assistants is under 1 KiB.
const maxTokenLen = 8 << 10

// TokenKey is one Ed25519 key of Config.TokenKeys.
type TokenKey struct {
	// ID is the JWT "kid": 1 to 64 letters, digits, '.', '_' or '-'.
	ID string
	// PrivateKey signs tokens when the key is the first of
	// Config.TokenKeys, which must have one. Nil: the key only verifies
	// (a previous key, kept until its tokens have expired).
	PrivateKey ed25519.PrivateKey
	// PublicKey verifies tokens; derived from PrivateKey when nil.
	PublicKey ed25519.PublicKey
}

// NewTokenKey generates a TokenKey with a random id. Keep its PrivateKey
// secret, outside the store, as the pepper.
func NewTokenKey() (TokenKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return TokenKey{}, fmt.Errorf("apikeys: NewTokenKey: %w", err)
	}
	id := make([]byte, 9)
	if _, err := rand.Read(id); err != nil {
		return TokenKey{}, fmt.Errorf("apikeys: NewTokenKey: %w", err)
	}
	return TokenKey{ID: base64.RawURLEncoding.EncodeToString(id), PrivateKey: priv, PublicKey: pub}, nil
}

// TokenParams describes a token to mint. A nil restriction is the parent
// key's own.
type TokenParams struct {
	// KeyID names the parent key when the context carries no key (the
	// service's own authority); with a key in the context it must be zero
	// or that key's id.
	KeyID              uuid.UUID
	AllowedOrigins     *[]string
	AllowedAssistants  *[]string
	TransientAssistant *bool
	Scopes             *[]string
	// TTL is the token's time to live: 0 for DefaultTokenTTL (or
	// Config.MaxTokenTTL, if shorter), at most Config.MaxTokenTTL. A token
	// never outlives its parent key: it expires with it.
	TTL time.Duration
}

// Token is a minted token and what it is bound to.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	KeyID     uuid.UUID `json:"key_id"`
}

// ErrTokensDisabled: MintToken was called on a Manager without
// Config.TokenKeys.
var ErrTokensDisabled = errors.New("apikeys: browser tokens are not configured (Config.TokenKeys)")

// tokenClaims is a token's payload.
type tokenClaims struct {
	jwt.RegisteredClaims
	Origins    []string `json:"origins,omitempty"`
	Assistants []string `json:"assistants,omitempty"`
	Transient  bool     `json:"transient,omitempty"`
	// Scope is the scopes, space-separated, as in OAuth (RFC 8693).
	Scope string `json:"scope,omitempty"`
}

// tokenSigner holds the token keys of a Manager.
type tokenSigner struct {
	signing TokenKey
	verify  map[string]ed25519.PublicKey
	keys    []TokenKey // in Config order, public parts for JWKS
	maxTTL  time.Duration
	cache   *tokenCache
}

func newTokenSigner(keys []TokenKey, maxTTL time.Duration) (*tokenSigner, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	switch {
	case maxTTL == 0:
		maxTTL = time.Hour
	case maxTTL < time.Second || maxTTL > MaxTokenTTLLimit:
		return nil, errors.New("apikeys: New: MaxTokenTTL must be 1s to 24h")
	}
	s := &tokenSigner{verify: map[string]ed25519.PublicKey{}, maxTTL: maxTTL, cache: newTokenCache()}
	for i, k := range keys {
		if !validKid(k.ID) {
			return nil, fmt.Errorf("apikeys: New: TokenKeys[%d]: ID must be 1 to 64 letters, digits, '.', '_' or '-'", i)
		}
		if _, dup := s.verify[k.ID]; dup {
			return nil, fmt.Errorf("apikeys: New: TokenKeys[%d]: duplicate ID %q", i, k.ID)
		}
		if k.PrivateKey != nil {
			if len(k.PrivateKey) != ed25519.PrivateKeySize {
				return nil, fmt.Errorf("apikeys: New: TokenKeys[%d]: PrivateKey is not an Ed25519 private key", i)
			}
			pub := k.PrivateKey.Public().(ed25519.PublicKey)
			if k.PublicKey != nil && !pub.Equal(k.PublicKey) {
				return nil, fmt.Errorf("apikeys: New: TokenKeys[%d]: PublicKey does not match PrivateKey", i)
			}
			k.PublicKey = pub
		}
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("apikeys: New: TokenKeys[%d]: needs an Ed25519 PrivateKey or PublicKey", i)
		}
		if i == 0 && k.PrivateKey == nil {
			return nil, errors.New("apikeys: New: TokenKeys[0] signs, and needs a PrivateKey")
		}
		s.verify[k.ID] = k.PublicKey
		s.keys = append(s.keys, TokenKey{ID: k.ID, PublicKey: k.PublicKey})
		if i == 0 {
			s.signing = k
		}
	}
	return s, nil
}

func validKid(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// TokenPublicKeys returns the public keys that verify this Manager's
// tokens, the signing one first (for a JWKS endpoint); none when tokens
// are off.
func (m *Manager) TokenPublicKeys() []TokenKey {
	if m.tokens == nil {
		return nil
	}
	return append([]TokenKey(nil), m.tokens.keys...)
}

// MintToken mints a token from a private key of the user: the key the
// context carries (NewContext; the middleware sets it), which must be
// allowed to manage keys (ScopeKeysWrite when it has scopes), or, without
// one, the key p.KeyID. The token has the parent's restrictions where p
// names none, and can have no more than the parent (see "Management can
// only narrow"); it expires after p.TTL, and no later than the parent.
// Errors: ErrTokensDisabled, a *ValidationError (ErrValidation), a
// *PermissionError (ErrNotPermitted), ErrNotFound for a parent that is not
// the user's, a *StoreError, ErrClosed.
func (m *Manager) MintToken(ctx context.Context, userID string, p TokenParams) (Token, error) {
	if err := m.live(); err != nil {
		return Token{}, err
	}
	if m.tokens == nil {
		return Token{}, ErrTokensDisabled
	}
	var probs problems
	var origins, assistants, scopes []string
	if p.AllowedOrigins != nil {
		origins = m.checkOrigins(&probs, *p.AllowedOrigins)
	}
	if p.AllowedAssistants != nil {
		assistants = m.checkAssistants(&probs, *p.AllowedAssistants)
	}
	if p.Scopes != nil {
		scopes = m.checkScopes(&probs, *p.Scopes)
	}
	ttl := p.TTL
	switch {
	case ttl == 0:
		ttl = min(DefaultTokenTTL, m.tokens.maxTTL)
	case ttl < time.Second || ttl > m.tokens.maxTTL:
		probs.add("ttl_seconds", fmt.Sprintf("must be 1 to %d", int64(m.tokens.maxTTL/time.Second)))
	}
	if len(probs) > 0 {
		return Token{}, probs.err()
	}
	parent, err := m.tokenParent(ctx, userID, p.KeyID)
	if err != nil {
		return Token{}, err
	}
	now := m.now()
	// The token's key as Authorize will see it (see tokenKey): the
	// parent's addresses and limits, the token's lists.
	k := Key{Type: Public, AllowedOrigins: parent.AllowedOrigins, AllowedAssistants: parent.AllowedAssistants,
		TransientAssistant: parent.TransientAssistant, Scopes: parent.Scopes, ExpiresAt: now.Add(ttl).Truncate(time.Second),
		AllowedIPs: parent.AllowedIPs, RateLimit: parent.RateLimit, Credits: parent.Credits}
	if p.AllowedOrigins != nil {
		k.AllowedOrigins = origins
	}
	if p.AllowedAssistants != nil {
		k.AllowedAssistants = assistants
	}
	if p.TransientAssistant != nil {
		k.TransientAssistant = *p.TransientAssistant
	}
	if p.Scopes != nil {
		k.Scopes = scopes
	}
	if !parent.ExpiresAt.IsZero() && parent.ExpiresAt.Before(k.ExpiresAt) {
		k.ExpiresAt = parent.ExpiresAt
	}
	if err := within(parent, &k); err != nil {
		return Token{}, err
	}
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return Token{}, fmt.Errorf("apikeys: mint token: %w", err)
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.cfg.Prefix,
			Subject:   parent.ID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(k.ExpiresAt),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		Origins: k.AllowedOrigins, Assistants: k.AllowedAssistants, Transient: k.TransientAssistant,
		Scope: strings.Join(k.Scopes, " "),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = m.tokens.signing.ID
	signed, err := t.SignedString(m.tokens.signing.PrivateKey)
	if err != nil {
		return Token{}, fmt.Errorf("apikeys: mint token: %w", err)
	}
	if len(signed) > maxTokenLen {
		return Token{}, &ValidationError{Field: "token", Reason: fmt.Sprintf("would be %d bytes, more than %d: name fewer origins, assistants or scopes", len(signed), maxTokenLen)}
	}
	return Token{Token: signed, ExpiresAt: k.ExpiresAt.UTC(), KeyID: parent.ID}, nil
}

// tokenParent returns the key a token is minted from: the acting key of
// ctx, re-read and checked as for any change, or, without one, the user's
// key id, which must be usable. Either way it must be private.
func (m *Manager) tokenParent(ctx context.Context, userID string, id uuid.UUID) (*Record, error) {
	if k, ok := KeyFromContext(ctx); ok {
		if id != uuid.Nil && id != k.ID {
			return nil, &PermissionError{Field: "key_id", Reason: "a key mints tokens only from itself"}
		}
		return m.actor(ctx, userID, ScopeKeysWrite)
	}
	if id == uuid.Nil {
		return nil, &ValidationError{Field: "key_id", Reason: "is required without an authorized key"}
	}
	rec, err := m.owned(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.Type != Private:
		return nil, &ValidationError{Field: "key_id", Reason: "tokens are minted from private keys"}
	case rec.Disabled, rec.Expired(m.cfg.Now()):
		return nil, &ValidationError{Field: "key_id", Reason: "the key is disabled or expired"}
	}
	rec.roll(m.cfg.Now().Unix())
	return &rec, nil
}

// LooksLikeToken reports whether s has the shape of a token (three
// base64url parts), so that front ends can tell tokens from keys without
// parsing either.
func LooksLikeToken(s string) bool {
	if len(s) < 5 || len(s) > maxTokenLen || strings.Count(s, ".") != 2 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// verifyToken returns the verified claims of raw, from the cache of
// verified tokens when it is there.
func (m *Manager) verifyToken(raw string) (*verifiedToken, bool) {
	now := m.cfg.Now()
	if v, ok := m.tokens.cache.get(raw, now); ok {
		return v, true
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if pub, ok := m.tokens.verify[kid]; ok {
			return pub, nil
		}
		return nil, errors.New("unknown kid")
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(m.cfg.Prefix),
		jwt.WithExpirationRequired(), jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(m.cfg.Now),
	)
	if err != nil || c.ExpiresAt == nil {
		return nil, false
	}
	parent, err := uuid.Parse(c.Subject)
	if err != nil {
		return nil, false
	}
	v := &verifiedToken{parent: parent, expires: c.ExpiresAt.Time.UTC(), origins: c.Origins, assistants: c.Assistants, transient: c.Transient}
	if c.Scope != "" {
		v.scopes = strings.Fields(c.Scope)
	}
	m.tokens.cache.put(raw, v, now)
	return v, true
}

// authorizeToken is Authorize for a token: see the package's "Browser
// tokens".
func (m *Manager) authorizeToken(ctx context.Context, raw string, req Request, cost int64, t *trace) (Key, error) {
	if m.tokens == nil {
		t.set(ReasonTokenInvalid)
		return Key{}, ErrInvalidKey
	}
	v, ok := m.verifyToken(raw)
	if !ok {
		t.set(ReasonTokenInvalid)
		return Key{}, ErrInvalidKey
	}
	if t != nil {
		t.keyID = v.parent
	}
	var (
		own Record
		rec = &own
		err error
	)
	switch {
	case m.cache != nil:
		var sh *Shared
		if sh, _, err = m.cachedGet(ctx, v.parent, t); err == nil {
			rec = sh.Record()
		}
	case m.viewer != nil:
		var sh *Shared
		if sh, err = m.viewer.View(ctx, v.parent); err == nil {
			rec = sh.Record()
		}
	default:
		opCtx, cancel := m.op(ctx)
		own, err = m.store.Get(opCtx, v.parent)
		cancel()
	}
	switch {
	case errors.Is(err, ErrNotFound):
		t.set(ReasonUnknown)
		return Key{}, ErrInvalidKey
	case err != nil:
		return Key{}, &StoreError{Op: "get", Err: err}
	}
	t.found(rec.ID, rec.UserID)
	k, err := m.tokenKey(rec, v, &req)
	if err != nil {
		m.traceTokenRefusal(t, rec, err)
		return k, err // zero for ErrInvalidKey; the token's key for a refusal, for CORS
	}
	if rec.Limited() {
		fresh, spent, err := m.spend(ctx, v.parent, rec.Digest, cost)
		switch {
		case errors.Is(err, ErrNotFound):
			t.set(ReasonUnknown)
			return Key{}, ErrInvalidKey
		case err != nil:
			return Key{}, &StoreError{Op: "get", Err: err}
		}
		k, err = m.tokenKey(&fresh, v, &req)
		if err != nil {
			m.traceTokenRefusal(t, &fresh, err)
			if spent {
				m.refund(ctx, &fresh, cost)
			}
			return k, err
		}
		if fresh.Limited() && !spent {
			return k, m.limitRefusal(&k, cost) // k has fresh's counters, copied
		}
	}
	m.noteUse(v.parent)
	return k, nil
}

// traceTokenRefusal names, for a Hook, why tokenKey refused a token
// whose parent is parent.
func (m *Manager) traceTokenRefusal(t *trace, parent *Record, err error) {
	if t == nil || !errors.Is(err, ErrInvalidKey) {
		return
	}
	switch {
	case parent.Disabled:
		t.reason = ReasonDisabled
	case !parent.ExpiresAt.IsZero() && parent.Expired(m.cfg.Now()):
		t.reason = ReasonExpired
	default: // not private any more, or narrowed since the token was minted
		t.reason = ReasonTokenInvalid
	}
}

// tokenKey is the key a token acts as, given its parent's record: the
// parent with the token's restrictions, a public key, expiring with the
// token. It fails with ErrInvalidKey when the parent no longer works or no
// longer covers the token (it was narrowed since), and with the refusal
// of rules 2 to 7 otherwise.
func (m *Manager) tokenKey(parent *Record, v *verifiedToken, req *Request) (Key, error) {
	if parent.Disabled || parent.Type != Private || !parent.ExpiresAt.IsZero() && parent.Expired(m.cfg.Now()) {
		return Key{}, ErrInvalidKey
	}
	k := Key{
		ID: parent.ID, Type: Public, Name: parent.Name,
		AllowedOrigins: v.origins, AllowedAssistants: v.assistants, TransientAssistant: v.transient,
		Scopes: v.scopes, AllowedIPs: parent.AllowedIPs,
		RateLimit: parent.RateLimit, Credits: parent.Credits, Usage: parent.Usage,
		UserID: parent.UserID, UserEmail: parent.UserEmail, Hint: parent.Hint,
		CreatedAt: parent.CreatedAt, UpdatedAt: parent.UpdatedAt,
		ExpiresAt: v.expires, LastUsedAt: parent.LastUsedAt, SuccessorID: parent.SuccessorID,
		token: true,
	}
	if !parent.ExpiresAt.IsZero() && parent.ExpiresAt.Before(k.ExpiresAt) {
		k.ExpiresAt = parent.ExpiresAt
	}
	if within(parent, &k) != nil { // the parent was narrowed since
		return Key{}, ErrInvalidKey
	}
	if err := check(&k, req); err != nil {
		return publicCopy(k), err
	}
	return publicCopy(k), nil
}

// publicCopy gives k lists of its own, empty rather than nil.
func publicCopy(k Key) Key {
	k.AllowedOrigins, k.AllowedAssistants, k.Scopes = cloneLists(k.AllowedOrigins, k.AllowedAssistants, k.Scopes)
	if len(k.AllowedIPs) > 0 {
		k.AllowedIPs = append([]netip.Prefix(nil), k.AllowedIPs...)
	}
	k.fillLists()
	k.ownLimits() // the parent's may be read in place (a Shared's): never lent out
	return k
}
