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

	// ErrOriginNotAllowed: the key is restricted to origins and the request's
	// Origin is not one of them, or the request has no Origin. HTTP: 403.
	ErrOriginNotAllowed = errors.New("apikeys: origin not allowed for this key")

	// ErrAssistantNotAllowed: the key is restricted to assistants and the
	// request names another one. HTTP: 403.
	ErrAssistantNotAllowed = errors.New("apikeys: assistant not allowed for this key")

	// ErrTransientNotAllowed: the request asks for a transient assistant and
	// the key does not allow them. HTTP: 403.
	ErrTransientNotAllowed = errors.New("apikeys: transient assistants not allowed for this key")

	// ErrPrivateKeyRequired: the endpoint needs a private key and a public key
	// was presented. HTTP: 403.
	ErrPrivateKeyRequired = errors.New("apikeys: this endpoint requires a private key, but a public key was used")

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
func FieldErrors(err error) []*ValidationError {
	var out []*ValidationError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *ValidationError:
			out = append(out, e)
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
