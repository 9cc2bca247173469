package apikeys

import (
	"context"
	"errors"
)

// Verification is what Verify finds out about a presented key, for
// operators: the reason a caller was refused, which callers are never
// told.
type Verification struct {
	// Valid: the key is well formed, known, the right secret, enabled and
	// not expired (its other restrictions depend on a request).
	Valid bool
	// Reason is ReasonAllowed for a valid key, else ReasonMalformed,
	// ReasonUnknown, ReasonWrongSecret, ReasonExpired, ReasonDisabled, or
	// for a browser token ReasonTokenInvalid.
	Reason Reason
	// Key is the key found, or a token's parent; zero when none was, and
	// only its ID for a wrong secret.
	Key Key
	// Token: what was presented is a browser token.
	Token bool
	// OldPepper: the key's stored digest is under one of
	// Config.OldPeppers; Authorize would move it to the current pepper.
	OldPepper bool
}

// Verify tells an operator whether key (or a browser token) is valid,
// and if not why, without using it: it reads the store once, and spends
// no rate limit or credit, records no use and re-digests nothing. The
// error is a *StoreError or ErrClosed; an invalid key is not an error.
func (m *Manager) Verify(ctx context.Context, key string) (Verification, error) {
	if err := m.live(); err != nil {
		return Verification{}, err
	}
	var v Verification
	id, typ, ok := ParseKeyID(m.cfg.Prefix, key)
	if !ok {
		if !LooksLikeToken(key) {
			v.Reason = ReasonMalformed
			return v, nil
		}
		v.Token = true
		if m.tokens == nil {
			v.Reason = ReasonTokenInvalid
			return v, nil
		}
		vt, ok := m.verifyToken(key)
		if !ok {
			v.Reason = ReasonTokenInvalid
			return v, nil
		}
		id = vt.parent
	}
	opCtx, cancel := m.op(ctx)
	rec, err := m.store.Get(opCtx, id)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		v.Reason = ReasonUnknown
		return v, nil
	case err != nil:
		return v, &StoreError{Op: "get", Err: err}
	}
	if !v.Token {
		d := m.digest.digest(key)
		if !d.equal(rec.Digest) {
			_, v.OldPepper = m.oldDigest(key, rec.Digest)
		}
		if !v.OldPepper && !d.equal(rec.Digest) || rec.Type != typ {
			// Only the id, which the presented text carries anyway.
			v.Reason, v.Key = ReasonWrongSecret, Key{ID: rec.ID}
			return v, nil
		}
	}
	v.Key = m.public(rec.Key)
	switch {
	case rec.Expired(m.cfg.Now()):
		v.Reason = ReasonExpired
	case rec.Disabled:
		v.Reason = ReasonDisabled
	case v.Token && rec.Type != Private:
		v.Reason = ReasonTokenInvalid
	default:
		v.Valid, v.Reason = true, ReasonAllowed
	}
	return v, nil
}
