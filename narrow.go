package apikeys

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Management can only narrow
//
// A change made with a key (the key that authorized the request, carried
// by the context: NewContext, set by the middleware) can give no more than
// that key has. The acting key is re-read from the store for every call,
// so that what counts is the key as it is now, and it must be a private key
// of the same user that still works and is not being retired (rotated out,
// in its grace period). Then every key it creates, changes, rotates or
// deletes, before and after the change, must lie within it:
//
//   - allowed_origins: if the acting key lists origins, the key lists
//     origins too, each matched by one of the acting key's entries (a
//     wildcard only by a wildcard at or above it); a private key that lists
//     none (server only) cannot make a private key that lists some (usable
//     from browsers), though it can make public keys, which are browser
//     keys by design and cannot call private endpoints;
//   - allowed_assistants: if the acting key lists assistants, the key lists
//     only those;
//   - transient_assistant: only if the acting key allows it;
//   - scopes: if the acting key has scopes, the key has scopes, each held
//     by the acting key ("calls:write" and "calls:*" are held by "calls:*");
//   - allowed_ips: if the acting key lists addresses, the key lists them
//     too, each prefix inside one of the acting key's;
//   - expires_at: if the acting key expires, the key expires no later;
//   - rate_limit: if the acting key has one, the key has one too, with a
//     limit no higher and a window no shorter;
//   - credits: if the acting key has credits, the key has credits too,
//     with no more remaining than the acting key has left now, and a
//     refill only if the acting key has one, of no more per interval and
//     an interval no shorter.
//
// Limits are per key, not pooled: a limited key that may manage keys can
// create several keys, each with up to what it has. Give keys whose
// budget must hold no api_keys:write scope. And because credits are spent,
// a key whose credits fell below a key it made can no longer change that
// key, as for any key wider than itself.
//
// An acting key with scopes also needs ScopeKeysWrite to change keys and
// ScopeKeysRead to read them (a *ScopeError otherwise), so a key scoped to
// other work cannot manage keys; a disabled key can do nothing.
//
// So a key cannot widen itself, and an unrestricted, non-expiring private
// key keeps full authority over its owner's keys. Reads (Get, List) only
// need the acting key to pass the first checks. A context without a key
// (or WithoutKey) acts with the service's own authority.

// WithoutKey returns ctx without the authorized key it may carry, so that
// Manager calls made with it act with the service's full authority over
// the user's keys instead of the authority of the key that authorized the
// request. Use it for changes the service makes on its own behalf.
func WithoutKey(ctx context.Context) context.Context {
	return &keyContext{Context: ctx, hidden: true}
}

// actor returns the record of the key ctx carries, re-read from the store,
// or nil when ctx carries none. It fails with a *PermissionError when the
// key may not manage the user's keys at all.
func (m *Manager) actor(ctx context.Context, userID, scope string) (*Record, error) {
	k, ok := KeyFromContext(ctx)
	if !ok {
		return nil, nil
	}
	if k.token {
		return nil, &PermissionError{Field: "key", Reason: "a browser token cannot manage keys or mint tokens"}
	}
	opCtx, cancel := m.op(ctx)
	rec, err := m.store.Get(opCtx, k.ID)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, &PermissionError{Field: "key", Reason: "the key making the change no longer exists"}
	case err != nil:
		return nil, &StoreError{Op: "get", Err: err}
	case rec.UserID != userID:
		return nil, &PermissionError{Field: "key", Reason: "the key making the change belongs to another user"}
	case rec.Type != Private:
		return nil, &PermissionError{Field: "key", Reason: "managing API keys requires a private key"}
	case rec.Disabled:
		return nil, &PermissionError{Field: "key", Reason: "the key making the change is disabled"}
	case rec.Expired(m.cfg.Now()):
		return nil, &PermissionError{Field: "key", Reason: "the key making the change has expired"}
	case rec.SuccessorID != [16]byte{}:
		return nil, &PermissionError{Field: "key", Reason: "the key making the change has been rotated out and is being retired; use its successor"}
	}
	if len(rec.Scopes) > 0 && !scopeHeld(rec.Scopes, scope) {
		return nil, &ScopeError{Scope: scope}
	}
	rec.roll(m.cfg.Now().Unix()) // what it has left now, refills included
	return &rec, nil
}

// within reports, as joined *PermissionErrors, how k exceeds the acting
// key a; nil when it does not or when there is no acting key.
func within(a *Record, k *Key) error {
	if a == nil {
		return nil
	}
	var errs []error
	deny := func(field, reason string) { errs = append(errs, &PermissionError{Field: field, Reason: reason}) }
	if a.Type == Private && len(a.AllowedOrigins) == 0 && k.Type == Private && len(k.AllowedOrigins) > 0 {
		// A server-only private key cannot make a private key that works
		// from browsers. (Public keys are browser keys by design and
		// cannot call private endpoints.)
		deny("allowed_origins", "a private key may list origins only if the key making the change does: it cannot be used from browsers")
	}
	errs = narrowList(errs, "allowed_origins", "origins", a.AllowedOrigins, k.AllowedOrigins,
		func(o string) bool { return originCovered(a.AllowedOrigins, o) }, "is not within the origins")
	errs = narrowList(errs, "allowed_assistants", "assistants", a.AllowedAssistants, k.AllowedAssistants,
		func(id string) bool { return contains(a.AllowedAssistants, id) }, "is not among the assistants")
	errs = narrowList(errs, "scopes", "scopes", a.Scopes, k.Scopes,
		func(sc string) bool { return scopeHeld(a.Scopes, sc) }, "is not held")
	errs = narrowList(errs, "allowed_ips", "client addresses", a.AllowedIPs, k.AllowedIPs,
		func(p netip.Prefix) bool { return prefixWithin(a.AllowedIPs, p) }, "is not within the client addresses")
	if k.TransientAssistant && !a.TransientAssistant {
		deny("transient_assistant", "the key making the change does not allow transient assistants")
	}
	if !a.ExpiresAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(a.ExpiresAt)) {
		deny("expires_at", "must be no later than the expiry of the key making the change, "+a.ExpiresAt.Format(time.RFC3339))
	}
	if r := a.RateLimit; r != nil && (k.RateLimit == nil || k.RateLimit.Limit > r.Limit || k.RateLimit.WindowSeconds < r.WindowSeconds) {
		deny("rate_limit", fmt.Sprintf("must be at most %d per window of at least %d seconds, the rate limit of the key making the change", r.Limit, r.WindowSeconds))
	}
	if c := a.Credits; c != nil {
		switch {
		case k.Credits == nil || k.Credits.Remaining > c.Remaining:
			deny("credits.remaining", fmt.Sprintf("must be at most %d, what the key making the change has left", c.Remaining))
		case k.Credits.Refill == nil:
		case c.Refill == nil:
			deny("credits.refill", "must be null: the credits of the key making the change are not refilled")
		case k.Credits.Refill.Amount > c.Refill.Amount || k.Credits.Refill.IntervalSeconds < c.Refill.IntervalSeconds:
			deny("credits.refill", fmt.Sprintf("must refill at most %d every %d seconds or more, as the key making the change does", c.Refill.Amount, c.Refill.IntervalSeconds))
		}
	}
	return errors.Join(errs...)
}

// narrowList checks one list restriction: when the acting key's list (of
// what) is not empty, the key's must not be, and each entry must pass
// inside. It appends a *PermissionError per failure to errs.
func narrowList[T any](errs []error, field, what string, acting, list []T, inside func(T) bool, outside string) []error {
	if len(acting) == 0 {
		return errs
	}
	if len(list) == 0 {
		errs = append(errs, &PermissionError{Field: field, Reason: "must list " + what + ": the key making the change is restricted to them"})
	}
	for i, v := range list {
		if !inside(v) {
			errs = append(errs, &PermissionError{Field: field + "[" + strconv.Itoa(i) + "]", Reason: fmt.Sprint(v) + " " + outside + " of the key making the change"})
		}
	}
	return errs
}

// originCovered reports whether every origin the canonical pattern p
// matches is matched by an entry of patterns.
func originCovered(patterns []string, p string) bool {
	scheme, host, wild := strings.Cut(p, "://*.")
	for _, a := range patterns {
		if a == p {
			return true
		}
		if !wild {
			if MatchOrigin(a, p) {
				return true
			}
			continue
		}
		// A wildcard is covered by a wildcard of the same scheme and port
		// whose base is the same or a parent: *.b.example.com by
		// *.example.com. One host under it stands in for all of them.
		if strings.Contains(a, "://*.") && MatchOrigin(a, scheme+"://x."+host) {
			return true
		}
	}
	return false
}
