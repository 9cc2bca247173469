package apikeys

import (
	"strconv"
	"strings"
)

// Scopes
//
// A scope is "resource:action", each side 1 to MaxScopePartLen of
// a-z 0-9 _ - . ("calls:write", "api_keys:read"); an entry of a key may use
// "*" as the whole action ("calls:*"), which holds every action on the
// resource. A request names the scopes it needs, always concrete. A key
// with no scopes is not restricted by scope. A key with scopes authorizes
// only requests that name scopes, all of which it holds: like every other
// restriction it fails closed, so a route that names no scope refuses
// scoped keys.

// MaxScopePartLen bounds each side of a scope's colon.
const MaxScopePartLen = 64

// The scopes the Manager requires of a key that manages keys, when the key
// has scopes: reads (Get, List) need ScopeKeysRead, changes ScopeKeysWrite.
const (
	ScopeKeysRead  = "api_keys:read"
	ScopeKeysWrite = "api_keys:write"
)

// IsScope reports whether s is a concrete scope, "resource:action", as a
// request names it (no "*").
func IsScope(s string) bool { return validScope(s, false) }

// validScope reports whether s is a scope; wildcard allows "resource:*".
func validScope(s string, wildcard bool) bool {
	res, act, ok := strings.Cut(s, ":")
	if !ok || !validScopePart(res) {
		return false
	}
	return validScopePart(act) || wildcard && act == "*"
}

func validScopePart(s string) bool {
	if len(s) == 0 || len(s) > MaxScopePartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// scopeHeld reports whether a key's scope entries hold the scope need,
// itself "resource:action" or, when comparing two keys, "resource:*".
func scopeHeld(held []string, need string) bool {
	res := need
	if i := strings.IndexByte(need, ':'); i >= 0 {
		res = need[:i]
	}
	for _, h := range held {
		if h == need {
			return true
		}
		// h is "res:*": its first colon is its second-last byte.
		if n := len(h); n >= 2 && h[n-1] == '*' && h[n-2] == ':' && h[:n-2] == res && strings.IndexByte(res, ':') < 0 {
			return true
		}
	}
	return false
}

// missingScope returns the first scope of need that held does not hold, or
// "" when it holds them all. An empty held list holds everything.
func missingScope(held, need []string) string {
	for _, n := range need {
		if !scopeHeld(held, n) {
			return n
		}
	}
	return ""
}

func (m *Manager) checkScopes(probs *problems, in []string) []string {
	return checkList(probs, "scopes", in, m.cfg.MaxScopes, func(s string) (string, string) {
		if !validScope(s, true) {
			return "", `must be resource:action, each 1 to ` + strconv.Itoa(MaxScopePartLen) + ` of a-z 0-9 _ - . ("calls:write"), or resource:* for every action`
		}
		return s, ""
	})
}

// ScopeError is the refusal of a request, or of a change made with a key,
// that needs a scope the key does not hold. It unwraps to
// ErrInsufficientScope. HTTP: 403 with WWW-Authenticate error
// "insufficient_scope" (RFC 6750 section 3.1).
type ScopeError struct {
	Scope string // the first scope needed and not held
}

func (e *ScopeError) Error() string {
	return "apikeys: insufficient scope: the key does not hold " + e.Scope
}

// Unwrap returns ErrInsufficientScope.
func (e *ScopeError) Unwrap() error { return ErrInsufficientScope }
