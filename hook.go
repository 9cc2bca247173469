package apikeys

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Observability
//
// Config.Hook receives every decision Authorize makes and every change
// made to a key, for logs, metrics and traces (the hooks/slogaudit and
// hooks/otelhook packages are two adapters). It is free when unused: with
// no hook, Authorize measures nothing and allocates nothing more.
//
// Callers of Authorize see one ErrInvalidKey for a malformed, unknown,
// wrong, expired, disabled or deleted key, or a bad token; the hook sees
// why (Decision.Reason). Nothing a hook receives holds a key's value or
// digest: Key never does.

// Hook observes a Manager. Its methods are called synchronously, on the
// goroutine of the call they report, after it is decided and before it
// returns: they must be safe for concurrent use, fast, and must not call
// back into the Manager for the same key. They must not retain the
// Request's Scopes or a Key's lists beyond the call, or must copy them.
type Hook interface {
	// Decision reports one call of Authorize.
	Decision(ctx context.Context, d Decision)
	// Change reports one change made to a key (Create, Update, Rotate,
	// Delete), after it was stored. Failed changes are not reported.
	Change(ctx context.Context, c Change)
}

// Reason is the operator's reason for a decision: why Authorize refused
// (or ReasonAllowed). Callers never see it: the malformed, unknown,
// wrong_secret, expired, disabled and token_invalid reasons are all one
// ErrInvalidKey to them.
type Reason string

// The reasons of a Decision.
const (
	ReasonAllowed      Reason = "allowed"
	ReasonMalformed    Reason = "malformed"     // not a key of this prefix (bad shape or checksum), nor a token; no store read
	ReasonUnknown      Reason = "unknown"       // well formed, no such key (never existed, or deleted); for a token, its parent key is gone
	ReasonWrongSecret  Reason = "wrong_secret"  // the key's id exists, its secret (or type) does not match
	ReasonExpired      Reason = "expired"       // the key (or a token's parent) has expired, or was rotated out and its grace period ended
	ReasonDisabled     Reason = "disabled"      // the key (or a token's parent) is disabled
	ReasonTokenInvalid Reason = "token_invalid" // a token with a bad signature, issuer or expiry, tokens are off, or its parent no longer covers it
	ReasonKeyType      Reason = "key_type"      // ErrPrivateKeyRequired or ErrPrivateKeyInBrowser
	ReasonOrigin       Reason = "origin"        // ErrOriginNotAllowed
	ReasonIP           Reason = "ip"            // ErrIPNotAllowed
	ReasonAssistant    Reason = "assistant"     // ErrAssistantNotAllowed
	ReasonTransient    Reason = "transient"     // ErrTransientNotAllowed
	ReasonScope        Reason = "scope"         // ErrInsufficientScope
	ReasonRateLimit    Reason = "rate_limit"    // ErrRateLimited
	ReasonCredits      Reason = "credits"       // ErrCreditsExhausted
	ReasonBadRequest   Reason = "bad_request"   // a *ValidationError: Request.Cost out of range
	ReasonStore        Reason = "store"         // a *StoreError: the store failed
	ReasonClosed       Reason = "closed"        // ErrClosed
)

// Decision is one call of Authorize, as a Hook sees it.
type Decision struct {
	// Allowed is true when Authorize returned a nil error.
	Allowed bool
	// Err is the error Authorize returned (nil when allowed): what the
	// caller saw.
	Err error
	// Reason is why, for operators.
	Reason Reason
	// KeyID is the id the presented key names (for a token, its parent
	// key), when it is known: zero for a malformed key or an unverified
	// token. For ReasonUnknown it is the id the caller presented, which
	// names no key.
	KeyID uuid.UUID
	// UserID is the key's owner, when the key was found.
	UserID string
	// Token is true when a browser token was presented.
	Token bool
	// Cached is true when the verification cache was consulted (Config.Cache
	// set, and a store read was needed); CacheHit when it answered.
	Cached, CacheHit bool
	// Request is what the caller asked for. Its Scopes belong to the caller.
	Request Request
	// Start is when Authorize began, on the wall clock (time.Now, not
	// Config.Now); Duration how long it took.
	Start    time.Time
	Duration time.Duration
}

// ChangeKind names what a Change did.
type ChangeKind string

// The kinds of Change.
const (
	ChangeCreated  ChangeKind = "created"
	ChangeUpdated  ChangeKind = "updated"
	ChangeEnabled  ChangeKind = "enabled"  // an Update that switched the key on (with or without other changes)
	ChangeDisabled ChangeKind = "disabled" // an Update that switched the key off (with or without other changes)
	ChangeRotated  ChangeKind = "rotated"  // the old key: After has its SuccessorID and the end of its grace period
	ChangeDeleted  ChangeKind = "deleted"
)

// Change is one change made to a key, as a Hook sees it. Rotate reports
// two: ChangeCreated for the new key, then ChangeRotated for the old one
// (and, with no grace period, ChangeDeleted when the old key is removed).
type Change struct {
	Kind  ChangeKind
	KeyID uuid.UUID
	// UserID owns the key.
	UserID string
	// Actor is the key that made the change (the key the context carried,
	// see NewContext), or zero when the service made it with its own
	// authority.
	Actor uuid.UUID
	// Before and After are the key's public properties (never its value
	// or digest) before and after the change; Before is zero (ID zero) for
	// ChangeCreated, After for ChangeDeleted.
	Before, After Key
}

// trace collects, for a Hook, what only Authorize's inner steps know. A
// nil *trace (no hook) records nothing.
type trace struct {
	reason           Reason
	keyID            uuid.UUID
	userID           string
	token            bool
	cached, cacheHit bool
	start            time.Time
}

func (t *trace) set(r Reason) {
	if t != nil {
		t.reason = r
	}
}

// found notes the key (or a token's parent) Authorize read.
func (t *trace) found(id uuid.UUID, userID string) {
	if t != nil {
		t.keyID, t.userID = id, userID
	}
}

// reasonOf is the reason for err, a refusal of a valid key or a failure
// (ErrInvalidKey and its kin are named where they are decided).
func reasonOf(err error) Reason {
	var (
		se *StoreError
		ve *ValidationError
	)
	switch {
	case err == nil:
		return ReasonAllowed
	case errors.Is(err, ErrKeyDisabled):
		return ReasonDisabled
	case errors.As(err, &se):
		return ReasonStore
	case errors.Is(err, ErrClosed):
		return ReasonClosed
	case errors.As(err, &ve):
		return ReasonBadRequest
	case errors.Is(err, ErrPrivateKeyRequired), errors.Is(err, ErrPrivateKeyInBrowser):
		return ReasonKeyType
	case errors.Is(err, ErrOriginNotAllowed):
		return ReasonOrigin
	case errors.Is(err, ErrIPNotAllowed):
		return ReasonIP
	case errors.Is(err, ErrAssistantNotAllowed):
		return ReasonAssistant
	case errors.Is(err, ErrTransientNotAllowed):
		return ReasonTransient
	case errors.Is(err, ErrInsufficientScope):
		return ReasonScope
	case errors.Is(err, ErrRateLimited):
		return ReasonRateLimit
	case errors.Is(err, ErrCreditsExhausted):
		return ReasonCredits
	}
	return ReasonUnknown
}

// observe reports an Authorize call that ended with err to the hook; the
// caller checks m.hook.
func (m *Manager) observe(ctx context.Context, t *trace, req *Request, err error) {
	d := Decision{
		Allowed: err == nil, Err: err, Reason: t.reason,
		KeyID: t.keyID, UserID: t.userID, Token: t.token, Cached: t.cached, CacheHit: t.cacheHit,
		Request: *req, Start: t.start, Duration: time.Since(t.start),
	}
	switch {
	case err == nil:
		d.Reason = ReasonAllowed
	case t.reason == "" || !errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrKeyDisabled):
		d.Reason = reasonOf(err)
	}
	m.hook.Decision(ctx, d)
}

// observeChange reports a change to the hook; the caller checks m.hook.
func (m *Manager) observeChange(ctx context.Context, kind ChangeKind, before, after Key) {
	c := Change{Kind: kind, Before: before, After: after, KeyID: after.ID, UserID: after.UserID}
	if c.KeyID == uuid.Nil {
		c.KeyID, c.UserID = before.ID, before.UserID
	}
	if a, ok := KeyFromContext(ctx); ok {
		c.Actor = a.ID
	}
	m.hook.Change(ctx, c)
}

// snapshot is m.public of a copy of k that shares nothing with k, for a
// Hook: public brings the counters up to now, in place.
func (m *Manager) snapshot(k Key) Key {
	k.AllowedOrigins, k.AllowedAssistants, k.Scopes = cloneLists(k.AllowedOrigins, k.AllowedAssistants, k.Scopes)
	if k.AllowedIPs != nil {
		k.AllowedIPs = slices.Clone(k.AllowedIPs)
	}
	if k.RateLimit != nil {
		r := *k.RateLimit
		k.RateLimit = &r
	}
	if k.Credits != nil {
		c := *k.Credits
		if c.Refill != nil {
			r := *c.Refill
			c.Refill = &r
		}
		k.Credits = &c
	}
	return m.public(k)
}
