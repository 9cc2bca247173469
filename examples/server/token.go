package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
)

// tokenKeyEnv names the environment variable that gives the token signing
// keys when -token-key is not set.
const tokenKeyEnv = "APIKEYS_TOKEN_KEY"

// demoTokenTTL is the time to live of the tokens POST /demo/token mints.
const demoTokenTTL = 10 * time.Minute

// tokenKeys returns the token signing keys that spec (-token-key, or
// $APIKEYS_TOKEN_KEY) names: comma-separated base64 Ed25519 seeds of 32
// bytes, the first signing and the others only verifying (the previous
// keys, during a rotation). Each key's id is derived from its public key,
// so every instance given the same seeds names them alike. With spec empty
// it generates a key of its own, and generated reports so: the caller warns
// when other processes share the store. The seeds never appear in an error.
func tokenKeys(spec string) (keys []apikeys.TokenKey, generated bool, err error) {
	if strings.TrimSpace(spec) == "" {
		k, err := apikeys.NewTokenKey()
		if err != nil {
			return nil, false, err
		}
		return []apikeys.TokenKey{k}, true, nil
	}
	for i, s := range strings.Split(spec, ",") {
		seed, ok := decodeSeed(strings.TrimSpace(s))
		if !ok {
			return nil, false, fmt.Errorf("-token-key (or %s): key %d is not the base64 of a 32-byte Ed25519 seed (make one with: head -c 32 /dev/urandom | base64)", tokenKeyEnv, i+1)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		sum := sha256.Sum256(pub)
		k := apikeys.TokenKey{ID: "demo-" + base64.RawURLEncoding.EncodeToString(sum[:9]), PublicKey: pub}
		if i == 0 {
			k.PrivateKey = priv // the others only verify
		}
		keys = append(keys, k)
	}
	return keys, false, nil
}

// decodeSeed decodes s as standard or URL base64, padded or not, and
// accepts it only as 32 bytes.
func decodeSeed(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, len(b) == ed25519.SeedSize
		}
	}
	return nil, false
}

// tokenBackend is POST /demo/token: the demo playing the customer's own
// backend, which keeps its private key on the server and gives its page a
// short-lived token instead. In the demo the signed-in user is user (the
// first -bootstrap user; "" when there is none), and the token is minted
// from that user's bootstrap private key.
type tokenBackend struct {
	m    *apikeys.Manager
	user string
	log  *slog.Logger
}

// tokenRequest is the body of POST /demo/token.
type tokenRequest struct {
	AssistantID string `json:"assistant_id"`
}

func (b *tokenBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A real service authenticates its user here, from its own session
	// (a cookie, say), refuses anyone not signed in, and mints from the
	// private key it keeps for that user. The demo has no sign-in: whoever
	// reaches this endpoint acts as the bootstrap user. Never expose an
	// endpoint like this one without authentication.
	if b.user == "" {
		tokenError(w, http.StatusServiceUnavailable, "this demo has no signed-in user to mint tokens for: start it with -bootstrap USER")
		return
	}
	// The token is for the page that asks, and only for a page of this
	// service: the request's Origin (which a browser sets and a page
	// cannot forge) must be on the host this request came to. The scheme
	// may differ, for a proxy that terminates TLS.
	origin := r.Header.Get("Origin")
	if !apikeys.IsOrigin(origin) || !sameHost(origin, r.Host) {
		tokenError(w, http.StatusForbidden, "tokens are minted only for this service's own pages: the request's Origin must be on "+r.Host)
		return
	}
	var req tokenRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.AssistantID == "" {
		tokenError(w, http.StatusBadRequest, `body must be {"assistant_id":"..."}`)
		return
	}
	// The service's own authority: a context without a key, naming the
	// parent key. (Behind the middleware, WithoutKey drops the key that
	// authorized the request.)
	ctx := apikeys.WithoutKey(r.Context())
	parent, err := bootstrapKeyID(ctx, b.m, b.user)
	if err != nil {
		b.fail(w, err)
		return
	}
	origins, assistants, transient := []string{origin}, []string{req.AssistantID}, false
	tok, err := b.m.MintToken(ctx, b.user, apikeys.TokenParams{
		KeyID:              parent,
		AllowedOrigins:     &origins,
		AllowedAssistants:  &assistants,
		TransientAssistant: &transient,
		Scopes:             &[]string{"calls:write"},
		TTL:                demoTokenTTL,
	})
	if err != nil {
		b.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(tok)
}

// errNoBootstrapKey: the signed-in user has no usable bootstrap key.
var errNoBootstrapKey = errors.New(`the signed-in user has no usable private key named "bootstrap" (enabled, not expired, not being rotated away)`)

// fail answers a failed mint.
func (b *tokenBackend) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNoBootstrapKey), errors.Is(err, apikeys.ErrNotFound):
		tokenError(w, http.StatusServiceUnavailable, "user "+b.user+": "+errNoBootstrapKey.Error())
	case errors.Is(err, apikeys.ErrValidation):
		msgs := []string{}
		for _, fe := range apikeys.FieldErrors(err) {
			msgs = append(msgs, fe.Field+" "+fe.Reason)
		}
		tokenError(w, http.StatusBadRequest, "cannot mint this token: "+strings.Join(msgs, "; "))
	case errors.Is(err, apikeys.ErrNotPermitted):
		tokenError(w, http.StatusForbidden, "the bootstrap key cannot give this token: "+err.Error())
	case errors.Is(err, apikeys.ErrTokensDisabled):
		tokenError(w, http.StatusServiceUnavailable, "browser tokens are not configured")
	default:
		b.log.Error("demo token", "err", err)
		tokenError(w, http.StatusServiceUnavailable, "the key store failed; try again")
	}
}

func tokenError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// sameHost reports whether origin's host[:port] is host, as the Host
// header gives it.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && host != "" && strings.EqualFold(u.Host, host)
}

// bootstrapKeyID returns the id of the user's newest usable private key
// named "bootstrap" (bootstrapKeys made it, on this instance or another
// that shares the store; a rotation keeps the name), or errNoBootstrapKey.
func bootstrapKeyID(ctx context.Context, m *apikeys.Manager, user string) (uuid.UUID, error) {
	now := time.Now()
	var p apikeys.ListParams
	for range 100 { // pages; a demo user has a handful of keys
		page, err := m.List(ctx, user, p)
		if err != nil {
			return uuid.Nil, err
		}
		for _, k := range page.Keys {
			if k.Type == apikeys.Private && k.Name == "bootstrap" && !k.Disabled &&
				k.SuccessorID == uuid.Nil && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now)) {
				return k.ID, nil
			}
		}
		if !page.HasMore {
			break
		}
		p.Cursor = page.NextCursor
	}
	return uuid.Nil, errNoBootstrapKey
}
