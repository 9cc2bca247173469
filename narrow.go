package apikeys

import (
	"context"
	"errors"
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
//   - expires_at: if the acting key expires, the key expires no later.
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
	if len(a.AllowedOrigins) > 0 {
		if len(k.AllowedOrigins) == 0 {
			deny("allowed_origins", "must list origins: the key making the change is restricted to "+strings.Join(a.AllowedOrigins, ", "))
		}
		for i, o := range k.AllowedOrigins {
			if !originCovered(a.AllowedOrigins, o) {
				deny("allowed_origins["+strconv.Itoa(i)+"]", o+" is not within the origins of the key making the change")
			}
		}
	}
	if len(a.AllowedAssistants) > 0 {
		if len(k.AllowedAssistants) == 0 {
			deny("allowed_assistants", "must list assistants: the key making the change is restricted to assistants")
		}
		for i, id := range k.AllowedAssistants {
			if !contains(a.AllowedAssistants, id) {
				deny("allowed_assistants["+strconv.Itoa(i)+"]", id+" is not among the assistants of the key making the change")
			}
		}
	}
	if len(a.Scopes) > 0 {
		if len(k.Scopes) == 0 {
			deny("scopes", "must list scopes: the key making the change is restricted to "+strings.Join(a.Scopes, ", "))
		}
		for i, sc := range k.Scopes {
			if !scopeHeld(a.Scopes, sc) {
				deny("scopes["+strconv.Itoa(i)+"]", sc+" is not held by the key making the change")
			}
		}
	}
	if len(a.AllowedIPs) > 0 {
		if len(k.AllowedIPs) == 0 {
			deny("allowed_ips", "must list client addresses: the key making the change is restricted to them")
		}
		for i, p := range k.AllowedIPs {
			if !prefixWithin(a.AllowedIPs, p) {
				deny("allowed_ips["+strconv.Itoa(i)+"]", p.String()+" is not within the client addresses of the key making the change")
			}
		}
	}
	if k.TransientAssistant && !a.TransientAssistant {
		deny("transient_assistant", "the key making the change does not allow transient assistants")
	}
	if !a.ExpiresAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(a.ExpiresAt)) {
		deny("expires_at", "must be no later than the expiry of the key making the change, "+a.ExpiresAt.Format(time.RFC3339))
	}
	return errors.Join(errs...)
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
