package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/envelope"
)

// Browser tokens
//
// POST {prefix}/api_keys/tokens mints a browser token (apikeys.Manager.
// MintToken) from the private key that authenticated the request, which
// needs api_keys:write when it has scopes (RequiredScopes says so). The
// body is optional; every member of it is:
//
//	{"token": {"allowed_origins": [...], "allowed_assistants": [...],
//	           "transient_assistant": false, "scopes": [...], "ttl_seconds": 600,
//	           "key_id": "<the authenticating key's id>"}}
//
// A missing list is the key's own; ttl_seconds defaults to
// apikeys.DefaultTokenTTL (or Config.MaxTokenTTL, if shorter) and may be 1
// to the Manager's MaxTokenTTL; key_id, when given, must be the
// authenticating key's, and names the parent key when the handler's
// Config.Owner authenticates users without a key. Unknown members, and
// the members a token takes from its key (expires_at, allowed_ips,
// rate_limit, credits), are 400 like the rest of the API. The answer is
// 201 with {"token": "...", "expires_at": "...", "key_id": "..."} in the
// envelope's data, and Cache-Control: no-store (a token is a credential).
//
// A token asking for more than the key has is 403 naming the restriction
// (the narrowing rule); a token or a public key is 403 key_type; on a
// Manager without Config.TokenKeys the endpoint is 404 ("browser tokens
// are not enabled"), as if it were not there: nothing can be minted, so
// the endpoint is absent rather than unimplemented (501), and a client
// learns the same from a service that did not mount it.
//
// GET {prefix}/api_keys/tokens/jwks.json is answered by the handler too,
// as JWKS does, but behind the middleware it needs a private key like
// every other route: mount JWKS outside the middleware so that other
// services can fetch it without one.

// tokensAllow is the Allow header of {prefix}/api_keys/tokens.
var tokensAllow = []string{"POST"}

// errTokensOff is the 404 of the token endpoints on a Manager without
// token keys.
const errTokensOff = "browser tokens are not enabled on this service"

func (h *handler) mintToken(w http.ResponseWriter, r *http.Request) {
	if len(h.m.TokenPublicKeys()) == 0 {
		envelope.WriteError(w, http.StatusNotFound, errTokensOff, nil, nil)
		return
	}
	raw, ok := h.read(w, r)
	if !ok {
		return
	}
	var p apikeys.TokenParams
	if len(bytes.TrimSpace(raw)) > 0 {
		fields, probs, ok := wrapped(w, raw, "token")
		if !ok {
			return
		}
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			raw := fields[name]
			switch name {
			case "allowed_origins":
				p.AllowedOrigins = new([]string)
				decodeStrings(&probs, name, raw, p.AllowedOrigins)
			case "allowed_assistants":
				p.AllowedAssistants = new([]string)
				decodeStrings(&probs, name, raw, p.AllowedAssistants)
			case "transient_assistant":
				p.TransientAssistant = new(bool)
				decodeBool(&probs, name, raw, p.TransientAssistant)
			case "scopes":
				p.Scopes = new([]string)
				decodeStrings(&probs, name, raw, p.Scopes)
			case "ttl_seconds":
				decodeTTL(&probs, raw, &p.TTL)
			case "key_id":
				var s string
				if decodeString(&probs, name, raw, &s) {
					id, err := uuid.Parse(s)
					if err != nil || len(s) != 36 {
						probs = append(probs, "key_id: must be an API key id")
					}
					p.KeyID = id
				}
			case "expires_at":
				probs = append(probs, "expires_at: cannot be set; use ttl_seconds")
			case "allowed_ips", "rate_limit", "credits", "enabled":
				probs = append(probs, name+": cannot be set; a token has its key's")
			default:
				probs = append(probs, strconv.Quote(name)+": unknown field")
			}
		}
		if len(probs) > 0 {
			envelope.WriteError(w, http.StatusBadRequest, "invalid request", probs, nil)
			return
		}
	}
	t, err := h.m.MintToken(r.Context(), owner(r).UserID, p)
	switch {
	case errors.Is(err, apikeys.ErrTokensDisabled):
		envelope.WriteError(w, http.StatusNotFound, errTokensOff, nil, nil)
	case err != nil:
		h.error(w, r, err)
	default:
		envelope.WriteData(w, http.StatusCreated, t, nil)
	}
}

// decodeTTL decodes ttl_seconds, a whole number of seconds. The range is
// the Manager's to check (it knows MaxTokenTTL): values out of any range
// are passed on as such, and an explicit 0 is out of range rather than
// "the default".
func decodeTTL(probs *[]string, raw json.RawMessage, dst *time.Duration) {
	var n int64
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &n) != nil {
		*probs = append(*probs, "ttl_seconds: must be a whole number of seconds")
		return
	}
	switch {
	case n < 1:
		*dst = -1
	case n > int64(apikeys.MaxTokenTTLLimit/time.Second):
		*dst = apikeys.MaxTokenTTLLimit + time.Second
	default:
		*dst = time.Duration(n) * time.Second
	}
}

// JWKS returns a handler serving the public keys that verify m's browser
// tokens as a JWK Set (RFC 7517, with the Ed25519 keys of RFC 8037), so
// that another service (a media server, say) can verify tokens without
// any secret:
//
//	{"keys":[{"kty":"OKP","crv":"Ed25519","x":"<base64url public key>","kid":"...","alg":"EdDSA","use":"sig"}]}
//
// the signing key first, then the keys kept for rotation. It answers GET
// and HEAD (405 otherwise) with Content-Type application/jwk-set+json and
// Cache-Control: public, max-age=300, so verifiers may cache the set for 5
// minutes: publish a new signing key (as a verify-only key of
// Config.TokenKeys) at least that long before it signs, or have verifiers
// fetch the set again on an unknown kid. On a Manager without
// Config.TokenKeys it answers 404. The set is fixed when JWKS is called,
// as the Manager's Config is.
//
// It needs no authentication and reads nothing from the request: mount it
// outside the middleware, next to the REST handler:
//
//	mux.Handle("GET /api_keys/tokens/jwks.json", httpapi.JWKS(m))
//	mux.Handle("/api_keys/", mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest))
//
// The first pattern is more specific than the second, so ServeMux sends
// the JWKS requests (GET and HEAD) to it and everything else under
// /api_keys/ through the middleware. JWKS panics when m is nil.
func JWKS(m *apikeys.Manager) http.Handler {
	if m == nil {
		panic("httpapi: JWKS: nil Manager")
	}
	return newJWKS(m)
}

// jwk is one key of a JWK Set: an Ed25519 public key (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

type jwksHandler struct {
	body []byte // nil: tokens are off
}

func newJWKS(m *apikeys.Manager) *jwksHandler {
	keys := m.TokenPublicKeys()
	if len(keys) == 0 {
		return &jwksHandler{}
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.PublicKey),
			Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		panic("httpapi: JWKS: " + err.Error()) // strings and byte slices always marshal
	}
	return &jwksHandler{body: append(body, '\n')}
}

func (j *jwksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, []string{"GET", "HEAD"})
		return
	}
	if j.body == nil {
		envelope.WriteError(w, http.StatusNotFound, errTokensOff, nil, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(j.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(j.body)
	}
}
