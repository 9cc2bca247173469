package apikeys

import (
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
// which exists only in the NewKey returned by Create and Rotate.
type Key struct {
	ID                 uuid.UUID `json:"id"`
	Type               KeyType   `json:"key_type"`
	Name               string    `json:"name"`
	AllowedOrigins     []string  `json:"allowed_origins"`
	AllowedAssistants  []string  `json:"allowed_assistants"`
	TransientAssistant bool      `json:"transient_assistant"`
	UserID             string    `json:"user_id"`
	UserEmail          string    `json:"user_email"`
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
}

// Expired reports whether the key has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// NewKey is a key together with its value, returned only by Create and
// Rotate. The value is shown once and cannot be recovered afterwards.
type NewKey struct {
	Key
	Value string `json:"key_value"`
}

// publicKey returns k with empty lists as empty slices rather than nil,
// so that JSON shows [] and callers need not nil-check.
func publicKey(k Key) Key {
	if k.AllowedOrigins == nil {
		k.AllowedOrigins = []string{}
	}
	if k.AllowedAssistants == nil {
		k.AllowedAssistants = []string{}
	}
	return k
}
