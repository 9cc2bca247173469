package apikeys

import (
	"errors"
	"strings"
)

// Errors returned by the Manager. Match them with errors.Is; the values
// wrapped around them carry details but never a key value.
var (
	// ErrValidation is what every *ValidationError unwraps to: the caller sent a
	// bad field, and nothing was stored.
	ErrValidation = errors.New("apikeys: invalid input")

	// ErrNotFound: no key with that id belongs to that user. Another user's
	// key is reported the same way, so ids of other tenants cannot be probed.
	ErrNotFound = errors.New("apikeys: key not found")

	// ErrInvalidKey is the one outcome for a presented key that is malformed,
	// unknown, has the wrong secret, was deleted or has expired. The causes
	// are deliberately indistinguishable. HTTP: 401.
	ErrInvalidKey = errors.New("apikeys: invalid API key")

	// ErrKeyDisabled: the key was disabled. Callers see it as ErrInvalidKey
	// (the error Authorize returns matches both), so a disabled key cannot
	// be told from a missing one over HTTP; operators match ErrKeyDisabled.
	ErrKeyDisabled = errors.New("apikeys: key disabled")

	// ErrIPNotAllowed: the key is restricted to client addresses and the
	// request's is not among them, or the request names none. HTTP: 403.
	ErrIPNotAllowed = errors.New("apikeys: client address not allowed for this key")

	// ErrInsufficientScope is what every *ScopeError unwraps to: the key is
	// restricted to scopes and does not hold one the request needs, or the
	// request names none. HTTP: 403 with WWW-Authenticate error
	// "insufficient_scope".
	ErrInsufficientScope = errors.New("apikeys: insufficient scope")

	// ErrOriginNotAllowed: the key is restricted to origins and the request's
	// Origin is not one of them, or the request has no Origin. HTTP: 403.
	ErrOriginNotAllowed = errors.New("apikeys: origin not allowed for this key")

	// ErrAssistantNotAllowed: the key is restricted to assistants and the
	// request names another one, or names none. HTTP: 403.
	ErrAssistantNotAllowed = errors.New("apikeys: assistant not allowed for this key")

	// ErrTransientNotAllowed: the request asks for a transient assistant and
	// the key does not allow them. HTTP: 403.
	ErrTransientNotAllowed = errors.New("apikeys: transient assistants not allowed for this key")

	// ErrPrivateKeyRequired: the endpoint needs a private key and a public key
	// was presented. HTTP: 403.
	ErrPrivateKeyRequired = errors.New("apikeys: this endpoint requires a private key, but a public key was used")

	// ErrPrivateKeyInBrowser: a private key came with an Origin (a browser
	// sent it, "null" included) that its allowed_origins does not list.
	// Private keys belong on servers. HTTP: 403.
	ErrPrivateKeyInBrowser = errors.New("apikeys: private keys must not be used from a browser; use a public key")

	// ErrRateLimited: the key's rate limit leaves less than the request
	// costs in the current window. Authorize returns it in a *LimitError,
	// which says when to retry. HTTP: 429 with Retry-After.
	ErrRateLimited = errors.New("apikeys: rate limit exceeded for this key")

	// ErrCreditsExhausted: the key's credits are fewer than the request
	// costs. Authorize returns it in a *LimitError, which says when the
	// next refill comes, if any. HTTP: 429.
	ErrCreditsExhausted = errors.New("apikeys: the key's credits are exhausted")

	// ErrNotPermitted is what every *PermissionError unwraps to: a change
	// made with a key would give more than that key has, or the key may not
	// manage keys at all. HTTP: 403.
	ErrNotPermitted = errors.New("apikeys: not permitted for the key making the change")

	// ErrAlreadyRotated: Rotate was asked to rotate a key that already has a
	// successor. Rotate the successor instead. HTTP: 409.
	ErrAlreadyRotated = errors.New("apikeys: the key has already been rotated")

	// ErrOldKeyLive comes with a NewKey from Rotate: the new key was stored
	// and works, but retiring the old key failed, so the old key may still
	// work. Retry by updating the old key's expiry, or delete it.
	ErrOldKeyLive = errors.New("apikeys: the new key was created, but the old key may still work")

	// ErrClosed: the Manager was closed. HTTP: 503.
	ErrClosed = errors.New("apikeys: Manager closed")

	// ErrConflict is returned by Store.Update when the record changed since it
	// was read (optimistic concurrency). The Manager retries on it; callers
	// of the Manager see it only when retries are exhausted.
	ErrConflict = errors.New("apikeys: concurrent update conflict")

	// ErrDuplicate is returned by Store.Create when the id already exists.
	ErrDuplicate = errors.New("apikeys: duplicate key id")
)

// ValidationError reports one bad input field. It unwraps to ErrValidation.
// When several fields are bad the Manager returns them all, joined with
// errors.Join; FieldErrors lists them.
type ValidationError struct {
	Field  string // JSON name of the field, with an index for list entries: "allowed_origins[2]"
	Reason string // what is wrong, in words fit for an API response
}

func (e *ValidationError) Error() string {
	return "apikeys: invalid " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrValidation.
func (e *ValidationError) Unwrap() error { return ErrValidation }

// FieldErrors returns every *ValidationError in err's tree, in order. It
// returns nil for errors that carry none.
func FieldErrors(err error) []*ValidationError { return collect[*ValidationError](err) }

// collect returns every E in err's tree, depth first, in order.
func collect[E error](err error) []E {
	var out []E
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(E); ok {
			out = append(out, e)
			return
		}
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// PermissionError reports one way a change made with a key (see
// Manager.Create) exceeds that key. It unwraps to ErrNotPermitted. Several
// are joined with errors.Join; PermissionErrors lists them.
type PermissionError struct {
	Field  string // JSON name of the field: "allowed_origins[1]", "expires_at", or "key" for the acting key itself
	Reason string // why, in words fit for an API response
}

func (e *PermissionError) Error() string {
	return "apikeys: not permitted: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrNotPermitted.
func (e *PermissionError) Unwrap() error { return ErrNotPermitted }

// PermissionErrors returns every *PermissionError in err's tree, in order.
func PermissionErrors(err error) []*PermissionError { return collect[*PermissionError](err) }

// problems collects validation errors for several fields.
type problems []error

func (p *problems) add(field, reason string) {
	*p = append(*p, &ValidationError{Field: field, Reason: reason})
}

func (p problems) err() error { return errors.Join(p...) }

// StoreError wraps a failure of the Store, so that callers can tell "the
// store is down" (HTTP 503) from every authorization outcome. It never means
// "allowed" and never means "invalid key".
type StoreError struct {
	Op  string // the Store method: "get", "create", ...
	Err error
}

func (e *StoreError) Error() string {
	var b strings.Builder
	b.WriteString("apikeys: store ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *StoreError) Unwrap() error { return e.Err }
