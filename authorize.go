package apikeys

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// Request is what a caller knows about a request that presents a key.
type Request struct {
	// Origin is the request's Origin header, empty when it has none.
	Origin string
	// AssistantID is the assistant the request wants to use, if any.
	AssistantID string
	// Transient is true when the request asks for a transient assistant
	// (one defined inline rather than by id).
	Transient bool
	// RequirePrivate is true for endpoints only private keys may call.
	RequirePrivate bool
}

// Authorize decides whether key may make the request. It parses the key
// without touching the store, reads the record by the id inside the key
// (one store read), compares digests in constant time and then checks
// expiry, key type, origin, assistant and transient flag, in that order.
//
// On success it returns the key. Otherwise the error is ErrInvalidKey for
// any malformed, unknown, wrong, deleted or expired key (and the Key is
// zero); one of ErrPrivateKeyRequired, ErrOriginNotAllowed,
// ErrAssistantNotAllowed or ErrTransientNotAllowed for a valid key that
// may not make this request (and the Key is that key, for logging and
// CORS decisions; it must not be treated as authorized); or a *StoreError
// when the store failed, which must be treated as "not allowed".
func (m *Manager) Authorize(ctx context.Context, key string, req Request) (Key, error) {
	parsed, err := parseKey(m.cfg.Prefix, key)
	if err != nil {
		return Key{}, ErrInvalidKey
	}
	digest := m.digest.digest(key)
	var rec Record
	if m.cache == nil {
		opCtx, cancel := m.op(ctx)
		rec, err = m.store.Get(opCtx, parsed.id)
		cancel()
	} else {
		rec, err = m.cachedGet(ctx, parsed.id)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Key{}, ErrInvalidKey
		}
		return Key{}, &StoreError{Op: "get", Err: err}
	}
	if !digest.equal(rec.Digest) || rec.Type != parsed.typ || (!rec.ExpiresAt.IsZero() && rec.Expired(m.cfg.Now())) {
		return Key{}, ErrInvalidKey
	}
	err = check(&rec.Key, &req)
	if err == nil {
		m.noteUse(rec.ID)
	}
	k := publicKey(rec.Key)
	if m.cache != nil {
		// rec's lists belong to the cache: the caller gets its own.
		k.AllowedOrigins, k.AllowedAssistants = cloneLists(k.AllowedOrigins, k.AllowedAssistants)
	}
	return k, err
}

// cachedGet reads id through the cache. The returned record's lists are
// shared with the cache and must not be modified.
func (m *Manager) cachedGet(ctx context.Context, id uuid.UUID) (Record, error) {
	now := m.cfg.Now()
	if e, ok := m.cache.get(id, now); ok {
		if e.rec == nil {
			return Record{}, ErrNotFound
		}
		return *e.rec, nil
	}
	gen := m.cache.generation(id)
	opCtx, cancel := m.op(ctx)
	rec, err := m.store.Get(opCtx, id)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		m.cache.put(id, nil, gen, now)
	case err == nil:
		cached := rec // the store gave us a private copy: the cache keeps it
		m.cache.put(id, &cached, gen, now)
	}
	return rec, err
}

// cloneLists copies two lists into one fresh backing array (one
// allocation), capped so that appending to one cannot reach the other.
func cloneLists(a, b []string) ([]string, []string) {
	if len(a)+len(b) == 0 {
		return a[:0:0], b[:0:0]
	}
	buf := make([]string, len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	return buf[:len(a):len(a)], buf[len(a):]
}

// check applies a key's restrictions to a request.
func check(k *Key, req *Request) error {
	if req.RequirePrivate && k.Type != Private {
		return ErrPrivateKeyRequired
	}
	if len(k.AllowedOrigins) > 0 && !originAllowed(k.AllowedOrigins, req.Origin) {
		return ErrOriginNotAllowed
	}
	if req.AssistantID != "" && len(k.AllowedAssistants) > 0 && !contains(k.AllowedAssistants, req.AssistantID) {
		return ErrAssistantNotAllowed
	}
	if req.Transient && !k.TransientAssistant {
		return ErrTransientNotAllowed
	}
	return nil
}

func originAllowed(patterns []string, origin string) bool {
	if origin == "" {
		return false
	}
	for _, p := range patterns {
		if MatchOrigin(p, origin) {
			return true
		}
	}
	return false
}

// OriginAllowed reports whether the key's allowed_origins lists the origin.
// An empty list allows any origin, but only a listed origin makes this true.
func (k *Key) OriginAllowed(origin string) bool {
	return originAllowed(k.AllowedOrigins, origin)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
