package apikeys

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// KeyType says what a key may be used for.
type KeyType string

const (
	// Private keys have full access to their owner's resources and belong
	// on servers.
	Private KeyType = "private"
	// Public keys are for browsers and are restricted by origins,
	// assistants and the transient flag.
	Public KeyType = "public"
)

// Key is an API key as the API shows it: every property but its value,
// which exists only in the NewKey returned by Create and Rotate. The lists
// of a Key that Authorize returns (and KeyFromContext) are read-only views
// shared with other requests; those of every other Key are the caller's.
type Key struct {
	ID                 uuid.UUID `json:"id"`
	Type               KeyType   `json:"key_type"`
	Name               string    `json:"name"`
	AllowedOrigins     []string  `json:"allowed_origins"`
	AllowedAssistants  []string  `json:"allowed_assistants"`
	TransientAssistant bool      `json:"transient_assistant"`
	// Scopes, when not empty, are the only "resource:action" scopes the
	// key holds ("calls:*" holds every action on calls).
	Scopes []string `json:"scopes"`
	// AllowedIPs, when not empty, are the only client addresses the key
	// may be used from.
	AllowedIPs []netip.Prefix `json:"allowed_ips"`
	// Disabled keys authorize nothing, and keep every other setting, so
	// that enabling the key again restores it. JSON shows "enabled".
	Disabled bool `json:"-"`
	// RateLimit, when not nil, caps what the key may spend per window.
	RateLimit *RateLimit `json:"rate_limit"`
	// Credits, when not nil, is the key's spending budget.
	Credits *Credits `json:"credits"`
	// Usage is the key's rate-limit and refill counters: as of the request
	// in a Key returned by Authorize, else as stored. It is not part of
	// the JSON form (RateLimitLeft and CreditsLeft read it).
	Usage     Usage  `json:"-"`
	UserID    string `json:"user_id"`
	UserEmail string `json:"user_email"`
	// Hint is a non-secret reminder of the value: "ak_pk_...x9Yz".
	Hint      string    `json:"hint"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt, when not zero, is the instant the key stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastUsedAt, when not zero, is about when the key last authorized a
	// request.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// SuccessorID, when not zero, is the key Rotate issued to replace this
	// one. The key is being retired: it works until ExpiresAt (its grace
	// period), cannot be rotated again, and cannot manage keys.
	SuccessorID uuid.UUID `json:"successor_id,omitzero"`

	// token marks the key a browser token acts as (Authorize of a token):
	// its parent's id and owner, the token's restrictions.
	token bool
}

// IsToken reports whether the key is what a browser token acts as: a key
// returned by Authorize for a token, with the parent key's id and owner
// and the token's restrictions. Such a key cannot manage keys or mint
// tokens.
func (k *Key) IsToken() bool { return k.token }

// Expired reports whether the key has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// keyJSON is Key without its methods, so that Key's MarshalJSON can embed
// it.
type keyJSON Key

// MarshalJSON writes the key with "enabled" (the opposite of Disabled),
// as the API shows it.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		keyJSON
		Enabled bool `json:"enabled"`
	}{keyJSON(k), !k.Disabled})
}

// UnmarshalJSON reads what MarshalJSON writes; a missing "enabled" is true.
func (k *Key) UnmarshalJSON(b []byte) error {
	v := struct {
		*keyJSON
		Enabled *bool `json:"enabled"`
	}{keyJSON: (*keyJSON)(k)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	k.Disabled = v.Enabled != nil && !*v.Enabled
	return nil
}

// NewKey is a key together with its value, returned only by Create and
// Rotate. The value is shown once and cannot be recovered afterwards.
type NewKey struct {
	Key
	Value string `json:"key_value"`
}

// MarshalJSON writes the key and its value.
func (k NewKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		keyJSON
		Enabled bool   `json:"enabled"`
		Value   string `json:"key_value"`
	}{keyJSON(k.Key), !k.Disabled, k.Value})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (k *NewKey) UnmarshalJSON(b []byte) error {
	var v struct {
		Value string `json:"key_value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	k.Value = v.Value
	return k.Key.UnmarshalJSON(b)
}

// public returns k as the Manager shows it: empty lists as empty slices
// rather than nil, so that JSON shows [] and callers need not nil-check,
// and counters as of now (a refill that is due shows as done). k must be
// the caller's own copy.
func (m *Manager) public(k Key) Key {
	k.fillLists()
	k.roll(m.cfg.Now().Unix())
	return k
}

// fillLists replaces nil lists with empty ones, in place.
func (k *Key) fillLists() {
	if k.AllowedOrigins == nil {
		k.AllowedOrigins = []string{}
	}
	if k.AllowedAssistants == nil {
		k.AllowedAssistants = []string{}
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.AllowedIPs == nil {
		k.AllowedIPs = []netip.Prefix{}
	}
}
